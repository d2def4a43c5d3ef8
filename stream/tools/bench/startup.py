"""Time from starting `streamrec run` to its first published result, as a subscriber sees it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import zmq


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seconds_to_first_result(model: Path, cache_dir: Path, timeout_s: float = 300) -> Optional[float]:
    """Launch a run on a synthetic camera and time the first `result/` message (None on failure)."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    context = zmq.Context.instance()
    with context.socket(zmq.SUB) as subscriber:
        subscriber.setsockopt(zmq.SUBSCRIBE, b"result/")
        subscriber.setsockopt(zmq.LINGER, 0)
        subscriber.connect(endpoint)
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "stream", "run", "--headless", "--source", "synthetic", "--model", str(model),
             "--publish", endpoint, "--duration", str(timeout_s)],
            env={**os.environ, "STREAMREC_CACHE_DIR": str(cache_dir)}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            while time.monotonic() - started < timeout_s and process.poll() is None:
                if subscriber.poll(100):
                    json.loads(subscriber.recv_multipart()[1])
                    return round(time.monotonic() - started, 2)
            return None
        finally:
            process.terminate()
            process.wait(10)
