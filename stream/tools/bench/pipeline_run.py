"""The pipeline end to end: N replay cameras, unlimited or paced, through worker and publisher to a subscriber."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import zmq

from capture.replay import ReplaySource
from config.loader import validate
from config.schema import AppConfig
from inference.model import Classifier
from stream.pipeline.app import Pipeline
from stream.tools.bench.measure import percentile, thread_cpu_s

WARMUP_S = 1.5
LATENCY_FIELD = re.compile(rb'"latency_ms":([-+.eE0-9]+)')
"""The one field the bench's subscriber needs, read straight from the payload: the wire encoder writes compact JSON,
and parsing all of every message cost this process about 1% of a core at 200 results/s, beside the model."""


class _CountingSink:
    """Counts results handed to the sinks (cheap: no JSON work in the measuring process)."""

    def __init__(self) -> None:
        self.count = 0

    def submit(self, results) -> None:
        self.count += len(results)


class _LatencyCollector(threading.Thread):
    """A real subscriber that keeps `latency_ms` of results published while `recording` is set."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(name="bench-subscriber", daemon=True)
        self._socket = zmq.Context.instance().socket(zmq.SUB)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"result/")
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(endpoint)
        self.recording = threading.Event()
        self.stop = threading.Event()
        self.latencies: list[float] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if self._socket.poll(100):
                    payload = self._socket.recv_multipart()[1]
                    found = LATENCY_FIELD.search(payload) if self.recording.is_set() else None
                    if found:
                        self.latencies.append(float(found.group(1)))
        finally:
            self._socket.close()


def bench_config(cameras: int, paced_fps: Optional[float], max_batch: int, skip: str = "off", lanes: int = 1,
                 model_spec: Optional[str] = None):
    """Cameras as a benchmark wants them: paced ones drop the oldest frame, unlimited ones block (nothing lost)
    and queue enough frames that even one camera fills whole batches. A `model_spec` of a served model makes the
    worker send `model.remote_inflight` batches at once, as `streamrec run` does."""
    camera = {"source": "synthetic", "pace": paced_fps is not None, "fps": paced_fps or 30.0,
              "queue_size": 2 if paced_fps else 2 * max_batch, "drop_policy": "drop_oldest" if paced_fps else "block"}
    return validate({
        "cameras": [{"id": f"cam{i}", **camera} for i in range(cameras)],
        "publisher": {"endpoint": "tcp://127.0.0.1:*", "queue_size": 4096},
        "batching": {"max_batch": max_batch, "max_wait_ms": 10},
        "skip": {"enabled": skip},
        "model": {"lanes": lanes, **({"spec": model_spec} if model_spec else {})},
    }, origin="bench")


@dataclass(frozen=True)
class PipelineWindow:
    """What a running pipeline did in one measured window."""

    seconds: float
    results: int
    captured: int
    dropped: int
    cpu_s: float
    """Process CPU time (all threads) in the window."""
    cpu_s_by_thread: dict[str, float]
    model_calls: int
    model_call_s: float
    latencies_ms: list[float]


def pipeline_row(classifier: Classifier, backend: str, precision: str, cameras: int, paced_fps: Optional[float],
                 frames: Sequence[np.ndarray], seconds: float, max_batch: int = 8, lanes: int = 1) -> dict[str, Any]:
    """Results per second, capture-to-publish latency and drop rate over `seconds` after a warm-up, with the worker
    running `lanes` batches at once."""
    config = bench_config(cameras, paced_fps, max_batch, lanes=lanes)
    window = measure_pipeline(classifier, config, frames, paced_fps, seconds)
    return {"backend": backend, "precision": precision, "batch": max_batch, "lanes": lanes, "cameras": cameras,
            "paced_fps": paced_fps, **window_figures(window)}


def window_figures(window: PipelineWindow) -> dict[str, float]:
    """results_per_s, latency_ms_p50/p99 and drop_rate of a window."""
    return {"results_per_s": round(window.results / window.seconds, 2),
            "latency_ms_p50": round(percentile(window.latencies_ms, 50), 2),
            "latency_ms_p99": round(percentile(window.latencies_ms, 99), 2),
            "drop_rate": round(window.dropped / window.captured, 4) if window.captured else 0.0}


def measure_pipeline(classifier: Classifier, config: AppConfig, frames: Sequence[np.ndarray],
                     paced_fps: Optional[float], seconds: float) -> PipelineWindow:
    """Run a Pipeline on replayed `frames` (one source per camera of `config`) and measure `seconds` after a warm-up."""
    def factory(camera):  # each camera starts at a different picture, so batches hold different frames
        shift = int(camera.id.removeprefix("cam")) * 7 % len(frames)
        return ReplaySource(list(frames[shift:]) + list(frames[:shift]), fps=paced_fps or 30.0)

    counter = _CountingSink()
    pipeline = Pipeline(config, classifier, threading.Event(), source_factory=factory, extra_sinks=[counter])
    pipeline.start()
    collector = _LatencyCollector(pipeline.publisher.endpoint)
    collector.start()
    try:
        time.sleep(WARMUP_S)
        before, threads_before = _totals(pipeline, counter), thread_cpu_s()
        collector.recording.set()
        time.sleep(seconds)
        collector.recording.clear()
        after, threads_after = _totals(pipeline, counter), thread_cpu_s()
    finally:
        collector.stop.set()
        pipeline.shutdown()
        collector.join(2)
    change = {key: after[key] - before[key] for key in after}
    by_thread = {name: spent - threads_before.get(name, 0.0) for name, spent in threads_after.items()}
    return PipelineWindow(change["time"], int(change["results"]), int(change["captured"]), int(change["dropped"]),
                          change["cpu"], by_thread, int(change["calls"]), change["call_s"], collector.latencies)


def _totals(pipeline: Pipeline, counter: _CountingSink) -> dict[str, float]:
    snapshots = [status.snapshot() for status in pipeline.statuses]
    calls = pipeline.stats.inference_seconds()
    return {"time": time.monotonic(), "cpu": time.process_time(), "results": counter.count,
            "captured": sum(s.captured for s in snapshots),
            "dropped": sum(s.dropped + pipeline.stats.lost(s.camera) for s in snapshots),
            "calls": calls.count, "call_s": calls.sum}
