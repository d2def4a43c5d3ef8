"""Several `streamrec run` processes ("kiosks") on one served model, each watched by its own ZeroMQ subscriber:
results per second, capture-to-publish latency, results out of capture order, and frames lost beyond the drops
the kiosk counted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import zmq

from stream.tools.bench.measure import percentile
from stream.tools.bench.startup import free_port

WARMUP_S = 1.5
FIRST_RESULT_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0
QUIET_S = 0.5
"""A watcher has seen everything once nothing arrived for this long after its kiosk exited."""
PACKAGES_ROOT = Path(__file__).resolve().parents[3]
"""Where `stream` is, so the kiosks run the same code as the bench."""


class KioskError(RuntimeError):
    """A kiosk process did not start publishing results."""


@dataclass
class CameraTally:
    """One camera's results and the drops its kiosk counted. Frames are numbered from 1: when the watcher's first
    heartbeat says none was classified yet, every frame up to the last result must have arrived or be among the
    counted drops. A watcher that joined later counts from the first result whose frame was captured after the first
    heartbeat it saw, with the drops that heartbeat counted: a frame captured before it may have been dropped, and
    counted, while an older frame's result was still on its way (the likely cause of 2 frames reported lost once in CI).
    When the first message is a result, every drop counts (fewer losses than there may be, never more)."""

    first_seq: Optional[int] = None
    last_seq: Optional[int] = None
    results: int = 0
    counted: int = 0
    """Results from `first_seq` on."""
    out_of_order: int = 0
    from_start: Optional[bool] = None
    dropped_before: int = 0
    dropped_last: int = 0
    joined_ts: Optional[float] = None
    """When joined late: the wall-clock time of the first heartbeat, whose drops `dropped_before` holds."""

    def result(self, frame_seq: int, captured_at: float) -> None:
        if self.last_seq is not None and frame_seq <= self.last_seq:
            self.out_of_order += 1
            return
        self.last_seq = frame_seq
        self.results += 1
        if self.first_seq is None:
            if self.joined_ts is not None and captured_at <= self.joined_ts:
                return
            self.first_seq, self.from_start = frame_seq, bool(self.from_start)
        self.counted += 1

    def heartbeat(self, classified: int, dropped: int, sent_ts: float) -> None:
        if self.from_start is None:
            self.from_start = classified == 0
            self.dropped_before = 0 if self.from_start else dropped
            self.joined_ts = None if self.from_start else sent_ts
        self.dropped_last = dropped

    @property
    def missing(self) -> int:
        if self.first_seq is None:
            return 0
        return self.last_seq - (1 if self.from_start else self.first_seq) + 1 - self.counted

    @property
    def dropped(self) -> int:
        return self.dropped_last - self.dropped_before

    @property
    def lost(self) -> int:
        return max(0, self.missing - self.dropped)


class KioskWatch(threading.Thread):
    """A real subscriber to one kiosk: every result and heartbeat, and the latencies of results that arrive while
    `recording` is set."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(name=f"kiosk-watch-{endpoint}", daemon=True)
        self._socket = zmq.Context.instance().socket(zmq.SUB)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")  # every message, so a gap in `seq` is a message lost on the way
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RECONNECT_IVL, 5)  # connected before the kiosk binds: join it at once
        self._socket.connect(endpoint)
        self.cameras: defaultdict[str, CameraTally] = defaultdict(CameraTally)
        self.recording = threading.Event()
        self.first_result = threading.Event()
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.wire_gaps = 0
        self.last_heartbeat_mono = 0.0
        self.last_message_mono = time.monotonic()
        self._wire: tuple[Optional[str], int] = (None, 0)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if self._socket.poll(100):
                    self._take(json.loads(self._socket.recv_multipart()[1]))
        finally:
            self._socket.close()

    def _take(self, message: dict[str, Any]) -> None:
        self.last_message_mono = time.monotonic()
        boot, seq = self._wire
        if boot == message["boot"] and message["seq"] != seq + 1:
            self.wire_gaps += message["seq"] - seq - 1
        self._wire = (message["boot"], message["seq"])
        if message["type"] == "result":
            self.cameras[message["camera"]].result(message["frame_seq"], message["captured_at"])
            if self.recording.is_set():
                self.latencies.append(message["latency_ms"])
            self.first_result.set()
        elif message["type"] == "heartbeat":
            for camera, entry in message["cameras"].items():
                self.cameras[camera].heartbeat(entry["classified"], entry["dropped"], message["ts"])
            self.last_heartbeat_mono = self.last_message_mono

    def finish(self, timeout_s: float = 5.0) -> None:
        """Take what is still on its way, then stop."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and time.monotonic() - self.last_message_mono < QUIET_S:
            time.sleep(0.05)
        self.stop.set()
        self.join(1.0)


def kiosk_config(path: Path, model_spec: str, endpoint: str, cameras: int, fps: float) -> Path:
    """A `streamrec run` config: `cameras` synthetic cameras at `fps`, every frame to the model (skip off)."""
    tables = "".join(f'[[cameras]]\nid = "cam{n}"\nsource = "synthetic"\nfps = {fps}\n\n' for n in range(cameras))
    path.write_text(f'{tables}[model]\nspec = "{model_spec}"\n\n[skip]\nenabled = "off"\n\n'
                    f'[publisher]\nendpoint = "{endpoint}"\nheartbeat_interval_s = 0.2\n')
    return path


class Kiosk:
    """One `streamrec run` process with its config, its log and its watcher."""

    def __init__(self, index: int, model_spec: str, folder: Path, cameras: int, fps: float, run_for_s: float) -> None:
        self.index, self.cameras, self.fps = index, cameras, fps
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        config = kiosk_config(folder / f"kiosk{index}.toml", model_spec, endpoint, cameras, fps)
        self.log = folder / f"kiosk{index}.log"
        self.watch = KioskWatch(endpoint)
        self.watch.start()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream", "run", "--headless", "--config", str(config),
                 "--duration", str(run_for_s)],  # a bound, should this process outlive whoever started it
                cwd=PACKAGES_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.window_results = 0
        self.signalled_mono: Optional[float] = None
        self.stop_s: Optional[float] = None

    def log_tail(self, lines: int = 8) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.signalled_mono = time.monotonic()

    def check_exit(self) -> None:
        """Record how long the stop took, once the process has exited."""
        if self.stop_s is None and self.process.poll() is not None:
            self.stop_s = round(time.monotonic() - self.signalled_mono, 2)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def row(self, window_s: float) -> dict[str, Any]:
        """This kiosk's figures; `lost` adds each camera's frames missing beyond its counted drops."""
        tallies = list(self.watch.cameras.values())
        return {"kiosk": self.index, "cameras": self.cameras, "paced_fps": self.fps,
                "results_per_s": round(self.window_results / window_s, 2),
                "latency_ms_p50": round(percentile(self.watch.latencies, 50), 2),
                "latency_ms_p99": round(percentile(self.watch.latencies, 99), 2),
                "results": sum(t.results for t in tallies), "out_of_order": sum(t.out_of_order for t in tallies),
                "missing": sum(t.missing for t in tallies), "dropped": sum(t.dropped for t in tallies),
                "counted_from_start": all(t.from_start for t in tallies),
                "lost": sum(t.lost for t in tallies), "wire_gaps": self.watch.wire_gaps,
                "final_heartbeat": self.signalled_mono is not None and self.watch.last_heartbeat_mono > self.signalled_mono,
                "exit_code": self.process.returncode, "stop_s": self.stop_s}


def run_kiosks(model_spec: str, count: int = 3, seconds: float = 10.0, cameras: int = 2,
               fps: float = 30.0) -> list[dict[str, Any]]:
    """Start `count` kiosks on `model_spec`, measure `seconds` once every one publishes results, stop them with
    SIGTERM; one row per kiosk (KioskError, with its log, when one never publishes a result)."""
    with tempfile.TemporaryDirectory(prefix="streamrec-kiosks-") as folder:
        run_for_s = FIRST_RESULT_TIMEOUT_S + WARMUP_S + seconds + 60
        kiosks: list[Kiosk] = []
        try:
            for n in range(count):
                kiosks.append(Kiosk(n, model_spec, Path(folder), cameras, fps, run_for_s))
            _wait_for_results(kiosks)
            time.sleep(WARMUP_S)
            window_s = _measure(kiosks, seconds)
        finally:
            _stop_all(kiosks)
        return [kiosk.row(window_s) for kiosk in kiosks]


def _wait_for_results(kiosks: list[Kiosk]) -> None:
    deadline = time.monotonic() + FIRST_RESULT_TIMEOUT_S
    for kiosk in kiosks:
        while not kiosk.watch.first_result.wait(0.1):
            if kiosk.process.poll() is not None or time.monotonic() > deadline:
                raise KioskError(f"kiosk {kiosk.index} published no result (exit code {kiosk.process.poll()}):\n"
                                 f"{kiosk.log_tail()}")


def _measure(kiosks: list[Kiosk], seconds: float) -> float:
    before = [_result_count(kiosk) for kiosk in kiosks]
    for kiosk in kiosks:
        kiosk.watch.recording.set()
    started = time.monotonic()
    time.sleep(seconds)
    for kiosk in kiosks:
        kiosk.watch.recording.clear()
    elapsed = time.monotonic() - started
    for kiosk, count in zip(kiosks, before):
        kiosk.window_results = _result_count(kiosk) - count
    return elapsed


def _result_count(kiosk: Kiosk) -> int:
    return sum(tally.results for tally in list(kiosk.watch.cameras.values()))


def _stop_all(kiosks: list[Kiosk]) -> None:
    """SIGTERM every kiosk at once, time each exit (kill those still running after STOP_TIMEOUT_S), then let the
    watchers take the last results and heartbeats."""
    for kiosk in kiosks:
        kiosk.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and any(kiosk.process.poll() is None for kiosk in kiosks):
        for kiosk in kiosks:
            kiosk.check_exit()
        time.sleep(0.02)
    for kiosk in kiosks:
        kiosk.check_exit()
        kiosk.kill()
        kiosk.watch.finish()
