"""Counters of the inference worker: what was classified, in which batches, and when it last made progress."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional

INFERENCE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the per-batch inference time histogram (seconds)."""


@dataclass(frozen=True)
class HistogramSnapshot:
    """A histogram as Prometheus shows it: cumulative counts per upper bound (the last is +Inf), sum and count."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    sum: float
    count: int


class Histogram:
    """Counts observations per bucket; not thread-safe on its own (WorkerStats holds the lock)."""

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation in the first bucket whose bound is >= value."""
        self._counts[bisect_left(self.bounds, value)] += 1
        self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        """A copy with cumulative counts."""
        cumulative, total = [], 0
        for count in self._counts:
            total += count
            cumulative.append(total)
        return HistogramSnapshot(self.bounds, tuple(cumulative), self._sum, total)


class WorkerStats:
    """Thread-safe counters written by the worker and read by heartbeats, status lines and health checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._classified: Counter[str] = Counter()
        self._reused: Counter[str] = Counter()
        self._lost: Counter[str] = Counter()
        self.batch_sizes: Counter[int] = Counter()
        self.failed_batches = 0
        self.last_error: Optional[str] = None
        self._last_progress = time.monotonic()
        self._inference_s_total = 0.0
        self._inference_s = Histogram(INFERENCE_BUCKETS_S)

    def record_batch(self, cameras: Iterable[str], inference_s: float) -> None:
        """Count one classified batch."""
        cameras = list(cameras)
        with self._lock:
            self._classified.update(cameras)
            self.batch_sizes[len(cameras)] += 1
            self._inference_s_total += inference_s
            self._inference_s.observe(inference_s)
            self._last_progress = time.monotonic()

    def record_reused(self, camera: str) -> None:
        """Count a frame whose result was carried over from the camera's unchanged previous picture."""
        with self._lock:
            self._reused[camera] += 1
            self._last_progress = time.monotonic()

    def reused(self, camera: str) -> int:
        """Frames of `camera` answered with a reused result."""
        with self._lock:
            return self._reused[camera]

    def record_idle(self) -> None:
        """The worker looked for frames and found none: it is alive, just without work."""
        with self._lock:
            self._last_progress = time.monotonic()

    def record_failure(self, message: str, cameras: Iterable[str] = ()) -> None:
        """A batch failed; its frames (one camera id each) are lost and counted as dropped."""
        with self._lock:
            self.failed_batches += 1
            self.last_error = message
            self._lost.update(cameras)

    def lost(self, camera: str) -> int:
        """Frames of `camera` whose batch failed (a model server down or too slow)."""
        with self._lock:
            return self._lost[camera]

    def classified(self, camera: str) -> int:
        """Frames of `camera` classified so far."""
        with self._lock:
            return self._classified[camera]

    def inference_seconds(self) -> HistogramSnapshot:
        """Per-batch inference time (preprocess, model, top-k) so far."""
        with self._lock:
            return self._inference_s.snapshot()

    def batch_size_counts(self) -> dict[int, int]:
        """How many batches of each size ran so far."""
        with self._lock:
            return dict(self.batch_sizes)

    def progress_age(self, now: Optional[float] = None) -> float:
        """Seconds since the worker last finished a batch or an idle wait."""
        with self._lock:
            return (time.monotonic() if now is None else now) - self._last_progress

    @property
    def batches(self) -> int:
        """Batches run so far."""
        with self._lock:
            return sum(self.batch_sizes.values())
