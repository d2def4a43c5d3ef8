"""RTSP credentials, plain or percent-encoded, never appear in logs, heartbeats, status text, errors,
or what FFmpeg and OpenCV print themselves."""

import base64
import json
import threading

import pytest

from capture.queue import FrameQueueSet
from capture.status import CameraStatus
from capture.thread import CaptureThread
from config.loader import ConfigError, validate
from config.redact import redact
from tests.conftest import cli_env, run_cli
from tests.fakes import Subscriber, wait_for
from tests.rtsp_fixture import free_port, rtsp_server  # noqa: F401 - the fixture
from tests.test_capture_thread import camera_config
from tests.test_cli_lifecycle import RunningCli

USER, PASSWORD, URL_PASSWORD = "admin", "pa!ss", "pa%21ss"
SECRETS = (PASSWORD, URL_PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
HOSTILE_ENV = {"OPENCV_FFMPEG_LOGLEVEL": "56", "OPENCV_VIDEOIO_DEBUG": "1", "OPENCV_LOG_LEVEL": "VERBOSE"}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked"


@pytest.fixture
def env(torch_home):
    return cli_env(TORCH_HOME=str(torch_home), **HOSTILE_ENV)


def run_and_listen(url: str, env: dict, until: str) -> tuple[str, list[dict]]:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    run = RunningCli("run", "--headless", "--source", url, "--publish", endpoint, "--duration", "60", env=env)
    heartbeats: list[dict] = []
    try:
        assert run.wait_for_line("pipeline started", 60), "".join(run.lines)
        with Subscriber(endpoint, topics=("heartbeat",)) as subscriber:
            subscriber.collect_until(lambda m: any(p["cameras"]["cam0"]["state"] == until for _t, p in m), 40)
            heartbeats = subscriber.of_type("heartbeat")
    finally:
        run.process.terminate()
        run.process.wait(10)
        run.stop()
    return "".join(run.lines) + run.process.stdout.read(), heartbeats


@pytest.mark.slow
def test_percent_encoded_password_is_used_but_never_printed(rtsp_server, env):
    server = rtsp_server(user=USER, password=PASSWORD, url_password=URL_PASSWORD)
    output, heartbeats = run_and_listen(server.url, env, until="streaming")
    assert any(h["cameras"]["cam0"]["state"] == "streaming" for h in heartbeats), output[-3000:]
    assert "streaming rtsp://***@127.0.0.1" in output
    assert "OPENCV_FFMPEG_LOGLEVEL=56 lowered" in output
    assert_no_secret(output + json.dumps(heartbeats))


@pytest.mark.slow
def test_rejected_password_is_never_printed(rtsp_server, env):
    server = rtsp_server(user=USER, password="other", url_password=URL_PASSWORD)
    output, heartbeats = run_and_listen(server.url, env, until="connecting")
    assert "401" in output or "cannot open rtsp://***@127.0.0.1" in output, output[-3000:]
    assert_no_secret(output + json.dumps(heartbeats))


def test_unreachable_camera_error_and_status_are_masked():
    camera = camera_config(f"rtsp://{USER}:{URL_PASSWORD}@127.0.0.1:{free_port()}/cam", open_timeout_s=2)
    status = CameraStatus(camera.id, camera.spec.safe_text)
    queues = FrameQueueSet()
    stop = threading.Event()
    from capture.factory import SourceFactory

    thread = CaptureThread(camera, lambda: SourceFactory()(camera), queues.add("cam0", 2, camera.effective_drop_policy),
                           status, stop)
    thread.start()
    try:
        assert wait_for(lambda: status.snapshot().last_error is not None, 20)
    finally:
        stop.set()
        thread.join(5)
    snapshot = status.snapshot()
    assert "rtsp://***@127.0.0.1" in snapshot.last_error
    assert_no_secret(repr(snapshot))


@pytest.mark.parametrize("source", [
    f"rtsp://{USER}:{URL_PASSWORD}@127.0.0.1:99999/cam",
    f"rtsp://{USER}:{PASSWORD} with blank@127.0.0.1/cam",
    f"rtsp://{USER}:{URL_PASSWORD}@/cam",
    f"rtps://{USER}:{URL_PASSWORD}@127.0.0.1/cam",
    f"rtsp://{USER}:{URL_PASSWORD}@127.0.0.1/cam\x00",
])
def test_config_errors_about_malformed_urls_do_not_repeat_the_password(source):
    with pytest.raises(ConfigError) as error:
        validate({"cameras": [{"id": "cam0", "source": source}]})
    assert "\n" not in str(error.value)
    assert_no_secret(str(error.value))


def test_check_config_lists_cameras_with_masked_urls(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[[cameras]]\nid = "door"\nsource = "rtsp://{USER}:{URL_PASSWORD}@10.0.0.9/live"\n')
    done = run_cli("check-config", str(config))
    assert done.returncode == 0, done.stderr
    assert "rtsp://***@10.0.0.9/live" in done.stdout
    assert_no_secret(done.stdout + done.stderr)


@pytest.mark.parametrize("text", [
    f"rtsp://{USER}:{URL_PASSWORD}@host/x",
    f"rtsp://{USER}:p@ss/{URL_PASSWORD}@host/x",
    f"failed: 'RTSP://{USER}:{PASSWORD}@host:554/x' (timeout)",
    f"rtsp://host/x?user={USER}&password={URL_PASSWORD}",
])
def test_redact_masks_plain_and_encoded_passwords(text):
    assert_no_secret(redact(text))
