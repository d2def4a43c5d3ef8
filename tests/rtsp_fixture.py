"""A real RTSP server for tests: tests/rtsp_server.py (GStreamer, system python) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
READY_TIMEOUT_S = 20.0


def gstreamer_rtsp_available() -> bool:
    """True when the system python can import gst-rtsp-server (scripts/install-system-deps installs it)."""
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RtspServer:
    """One server process; `stop`/`start` again on the same port, `pause`/`resume` to go silent with the socket open."""

    def __init__(self, pattern: str = "ball", user: Optional[str] = None, password: Optional[str] = None,
                 url_password: Optional[str] = None) -> None:
        self.port = free_port()
        self._pattern = pattern
        self._user, self._password = user, password
        self._url_password = url_password or password
        self.process: Optional[subprocess.Popen] = None
        self.stderr: list[str] = []

    @property
    def url(self) -> str:
        """rtsp://[user:password@]127.0.0.1:PORT/cam (the password as it is written in the URL)."""
        auth = f"{self._user}:{self._url_password}@" if self._user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/cam"

    def start(self) -> "RtspServer":
        args = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--pattern", self._pattern]
        if self._user:
            args += ["--user", self._user, "--password", self._password or ""]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                        stdin=subprocess.DEVNULL)
        threading.Thread(target=self._collect_stderr, args=(self.process,), daemon=True).start()
        ready = self._wait_ready()
        if not ready:
            self.stop()
            raise RuntimeError(f"RTSP test server did not start: {''.join(self.stderr)[-2000:]}")
        return self

    def _wait_ready(self) -> bool:
        assert self.process and self.process.stdout
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_S)
        return bool(result) and result[0].startswith("ready")

    def _collect_stderr(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self.stderr.append(line)

    def stop(self) -> None:
        """Terminate the server (connections close)."""
        if self.process is None:
            return
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the server stops sending but its sockets stay open."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def rtsp_server() -> Iterator[type]:
    """A factory for started RtspServer objects; every one is stopped after the test."""
    if not gstreamer_rtsp_available():
        pytest.skip("gst-rtsp-server for /usr/bin/python3 is missing; run scripts/install-system-deps as root")
    servers: list[RtspServer] = []

    def start(**options) -> RtspServer:
        servers.append(RtspServer(**options).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def wait_until(condition, timeout_s: float, interval_s: float = 0.05) -> Optional[float]:
    """Seconds until `condition()` held, or None when it did not within `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(interval_s)
    return None
