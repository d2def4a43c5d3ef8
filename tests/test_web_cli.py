"""`streamrec run --http`: the web interface comes up with the service and goes down with it on SIGTERM."""

import re
import signal

import pytest

from tests.conftest import cli_env
from tests.fakes import wait_for
from tests.test_cli_lifecycle import RunningCli
from tests.webclient import Client


@pytest.mark.slow
def test_run_with_http_serves_status_and_stops_cleanly_on_sigterm(torch_home):
    run = RunningCli("run", "--headless", "--source", "synthetic", "--source", "synthetic", "--publish", "tcp://127.0.0.1:*",
                     "--http", "127.0.0.1:0", env=cli_env(TORCH_HOME=str(torch_home)))
    try:
        assert run.wait_for_line("web interface on http://127.0.0.1:"), "".join(run.lines)
        url = re.search(r"web interface on (http://\S+)", "".join(run.lines)).group(1)
        client = Client(url)
        assert wait_for(lambda: client.get("/healthz").status == 200, 30)
        status = client.get("/api/status").json()
        run.process.send_signal(signal.SIGTERM)
        code = run.process.wait(10)
    finally:
        run.stop()
    assert code == 0, "".join(run.lines)
    assert [camera["id"] for camera in status["cameras"]] == ["cam0", "cam1"]
    assert status["model"] == "resnet18-imagenet1k-v1"
    assert any("pipeline stopped" in line for line in run.lines)
    assert not any("did not stop" in line for line in run.lines), "".join(run.lines)
