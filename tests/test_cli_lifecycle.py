"""`streamrec run` as a process: clean stops on signals, --duration and end of file; `subscribe` prints JSON lines."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, cli_env, run_cli


class RunningCli:
    """`python -m stream ARGS` in the background, with its stderr collected line by line."""

    def __init__(self, *args: str, env: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream", *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for_line(self, text: str, timeout_s: float = 60) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        return any(text in line for line in self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def env(torch_home):
    return cli_env(TORCH_HOME=str(torch_home))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_run_cleanly_within_two_seconds(env, signum):
    run = RunningCli("run", "--headless", "--source", "synthetic", "--source", "synthetic",
                     "--publish", "tcp://127.0.0.1:*", env=env)
    try:
        assert run.wait_for_line("streaming"), "".join(run.lines)
        sent = time.monotonic()
        run.process.send_signal(signum)
        code = run.process.wait(10)
        elapsed = time.monotonic() - sent
    finally:
        run.stop()
    assert code == 0, "".join(run.lines)
    assert elapsed < 2.0
    assert any("pipeline stopped" in line for line in run.lines)
    assert not any("did not stop" in line for line in run.lines)


def test_duration_ends_the_run_with_exit_0_and_says_headless_once(env):
    done = run_cli("run", "--source", "synthetic", "--duration", "1.5", "--publish", "tcp://127.0.0.1:*", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("no display") == 1


def test_end_of_file_ends_the_run(env, tmp_path: Path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for _ in range(10):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    done = run_cli("run", "--headless", "--source", str(video), "--publish", "tcp://127.0.0.1:*", env=env)
    assert done.returncode == 0, done.stderr
    assert "sources_ended" in done.stderr


def test_publisher_port_in_use_is_a_clear_error(env):
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = run_cli("run", "--headless", "--source", "synthetic", "--publish", f"tcp://127.0.0.1:{port}", env=env)
    assert done.returncode == 1
    assert f"cannot bind publisher to tcp://127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_subscribe_prints_one_json_object_per_line(env):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    run = RunningCli("run", "--headless", "--source", "synthetic", "--publish", endpoint, env=env)
    try:
        assert run.wait_for_line("pipeline started")
        done = run_cli("subscribe", "--endpoint", endpoint, "--count", "6", "--duration", "30", env=env)
    finally:
        run.process.send_signal(signal.SIGTERM)
        run.process.wait(10)
        run.stop()
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 6
    payloads = [json.loads(line) for line in lines]
    assert {p["type"] for p in payloads} <= {"result", "heartbeat", "event"}
    assert all(p["v"] == 1 for p in payloads)


def test_subscribe_topic_filter_only_heartbeats(env):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    run = RunningCli("run", "--headless", "--source", "synthetic", "--publish", endpoint, env=env)
    try:
        assert run.wait_for_line("pipeline started")
        done = run_cli("subscribe", "--endpoint", endpoint, "--topic", "heartbeat", "--count", "2", "--duration", "30", env=env)
    finally:
        run.process.send_signal(signal.SIGTERM)
        run.process.wait(10)
        run.stop()
    assert [json.loads(line)["type"] for line in done.stdout.splitlines()] == ["heartbeat", "heartbeat"]


def test_rtsp_credentials_never_reach_the_log(env):
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/stream"
    done = run_cli("run", "--headless", "--source", url, "--duration", "3", "--publish", "tcp://127.0.0.1:*", env=env)
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert "rtsp://***@127.0.0.1" in done.stderr


def test_python_dash_m_stream_and_console_script_agree():
    done = subprocess.run([sys.executable, "-m", "stream", "--help"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "check-config" in done.stdout
