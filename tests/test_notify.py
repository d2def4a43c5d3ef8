"""sd_notify: datagrams to a real NOTIFY_SOCKET; READY, STATUS, WATCHDOG only while healthy, STOPPING on shutdown."""

import signal
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from stream.pipeline.app import Pipeline
from stream.service.notify import NotifierThread, SdNotifier, status_line, watchdog_interval
from tests.conftest import cli_env, make_config
from tests.fakes import NotifySocket
from tests.test_cli_lifecycle import RunningCli
from tests.test_health import StallingClassifier


@pytest.fixture
def notify_path():
    with tempfile.TemporaryDirectory(prefix="sdn") as directory:  # AF_UNIX paths are limited to 107 bytes
        yield str(Path(directory) / "notify")


def test_notifier_sends_fields_as_one_datagram_to_a_socket_path(notify_path):
    with NotifySocket(notify_path) as systemd:
        notifier = SdNotifier(notify_path)
        assert notifier.send("READY=1", "STATUS=cam0 streaming")
        assert systemd.collect_until(lambda d: len(d) == 1, 5)
        notifier.close()
    assert systemd.datagrams == [["READY=1", "STATUS=cam0 streaming"]]


def test_notifier_reaches_an_abstract_socket():
    address = f"@streamrec-test-{uuid.uuid4().hex}"
    with NotifySocket(address) as systemd:
        SdNotifier.from_environ({"NOTIFY_SOCKET": address}).send("WATCHDOG=1")
        assert systemd.collect_until(lambda d: len(d) == 1, 5)
    assert systemd.datagrams == [["WATCHDOG=1"]]


def test_notifier_without_systemd_is_a_silent_no_op():
    notifier = SdNotifier.from_environ({})
    assert not notifier.enabled
    assert notifier.send("READY=1") is False


def test_notifier_whose_socket_vanished_does_not_raise(notify_path):
    assert SdNotifier(notify_path).send("READY=1") is False


@pytest.mark.parametrize("environ, expected", [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "junk"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process(environ, expected):
    assert watchdog_interval(environ, pid=4242) == expected


def test_run_under_systemd_says_ready_status_watchdog_and_stopping(torch_home, notify_path):
    env = cli_env(TORCH_HOME=str(torch_home), NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000")
    with NotifySocket(notify_path) as systemd:
        run = RunningCli("run", "--headless", "--source", "synthetic", "--publish", "tcp://127.0.0.1:*", env=env)
        try:
            assert systemd.collect_until(lambda d: "READY=1" in [f for x in d for f in x], 60), "".join(run.lines)
            ready_at = len(systemd.datagrams)
            assert systemd.collect_until(lambda d: sum(f == "WATCHDOG=1" for x in d for f in x) >= 5, 20)
            run.process.send_signal(signal.SIGTERM)
            assert systemd.collect_until(lambda d: "STOPPING=1" in [f for x in d for f in x], 10)
            code = run.process.wait(10)
        finally:
            run.stop()
    fields = systemd.fields()
    assert code == 0, "".join(run.lines)
    assert any(f.startswith("STATUS=cam0 ") for f in systemd.datagrams[ready_at - 1])
    assert fields.index("READY=1") < fields.index("WATCHDOG=1") < fields.index("STOPPING=1")
    assert "WATCHDOG=1" not in fields[fields.index("STOPPING=1"):]


def test_watchdog_stops_while_the_worker_is_stalled(notify_path):
    classifier = StallingClassifier()
    pipeline = Pipeline(make_config(), classifier, threading.Event())
    pipeline.health._worker_stall_s = 0.5
    with NotifySocket(notify_path) as systemd:
        notifier = NotifierThread(SdNotifier(notify_path), pipeline.health.check,
                                  lambda report: status_line(pipeline.statuses, report), pipeline.stop,
                                  watchdog_s=0.05, status_interval_s=0.1)
        pipeline.start()
        notifier.start()
        try:
            assert systemd.collect_until(lambda d: sum(f == "WATCHDOG=1" for x in d for f in x) >= 3, 10)
            classifier.stall.set()
            assert systemd.collect_until(lambda _d: not notifier.petting, 10)
            stalled_at = len(systemd.datagrams)
            unhealthy = lambda d: sum(f.startswith("STATUS=unhealthy") for x in d[stalled_at:] for f in x)  # noqa: E731
            assert systemd.collect_until(lambda d: unhealthy(d) >= 5, 10)
        finally:
            classifier.release.set()
            pipeline.shutdown()
            notifier.close()
    after_stall = systemd.fields(stalled_at)
    assert "WATCHDOG=1" not in after_stall
    assert any("inference worker stuck" in f for f in after_stall)


def test_status_line_names_every_camera_state():
    pipeline = Pipeline(make_config([{"id": "cam0", "source": "synthetic"}, {"id": "door", "source": "synthetic"}]),
                        StallingClassifier(), threading.Event())
    assert status_line(pipeline.statuses) == "cam0 connecting, door connecting"
