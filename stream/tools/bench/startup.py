"""Time from starting `streamrec run` to its first published result, as a subscriber sees it; and per model path,
the cold start (empty cache), the time until the background build's faster path takes over, and the warm start."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

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


def _run_config(model: Path, backend: str, precision: str, endpoint: str, folder: Path) -> Path:
    config = folder / f"start-{backend}-{precision}.toml"
    config.write_text(f'[[cameras]]\nid = "cam0"\nsource = "synthetic"\n[model]\nspec = "{model}"\n'
                      f'backend = "{backend}"\nprecision = "{precision}"\n'
                      f'[publisher]\nendpoint = "{endpoint}"\nheartbeat_interval_s = 0.2\n')
    return config


def timed_start(config: Path, cache_dir: Path, endpoint: str, wait_for_takeover: bool,
                timeout_s: float = 600) -> dict[str, Optional[float]]:
    """Start `streamrec run --config`, and time its first result and (with `wait_for_takeover`) the first heartbeat
    whose model is no longer optimizing, with the path it then runs on."""
    context = zmq.Context.instance()
    found: dict[str, Any] = {"first_s": None, "takeover_s": None, "path": None}
    with context.socket(zmq.SUB) as subscriber:
        for topic in (b"result/", b"heartbeat"):
            subscriber.setsockopt(zmq.SUBSCRIBE, topic)
        subscriber.setsockopt(zmq.LINGER, 0)
        subscriber.connect(endpoint)
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "stream", "run", "--headless", "--config", str(config), "--duration", str(timeout_s)],
            env={**os.environ, "STREAMREC_CACHE_DIR": str(cache_dir)}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            while time.monotonic() - started < timeout_s and process.poll() is None:
                if not subscriber.poll(100):
                    continue
                topic, payload = subscriber.recv_multipart()
                message, now = json.loads(payload), round(time.monotonic() - started, 2)
                if message["type"] == "result" and found["first_s"] is None:
                    found["first_s"] = now
                model = message.get("model") if message["type"] == "heartbeat" else None
                if isinstance(model, dict) and found["first_s"] is not None and not model.get("optimizing"):
                    found["takeover_s"], found["path"] = now, f"{model.get('backend')} {model.get('precision')}"
                if found["first_s"] is not None and (found["takeover_s"] is not None or not wait_for_takeover):
                    break
            return found
        finally:
            process.terminate()
            process.wait(10)


def start_path(model: Path, backend: str, precision: str) -> dict[str, Any]:
    """Cold start on an empty cache (first result, and when the built path takes over), then a warm start."""
    with tempfile.TemporaryDirectory(prefix="streamrec-bench-start-") as folder:
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        config = _run_config(model, backend, precision, endpoint, Path(folder))
        cold = timed_start(config, Path(folder) / "cache", endpoint, wait_for_takeover=True)
        warm = timed_start(config, Path(folder) / "cache", endpoint, wait_for_takeover=False)
    return {"backend": backend, "precision": precision, "cold_first_s": cold["first_s"],
            "takeover_s": cold["takeover_s"], "runs_on": cold["path"], "warm_first_s": warm["first_s"]}
