"""Counters of the inference worker: what was classified, in which batches, and when it last made progress."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Iterable, Optional


class WorkerStats:
    """Thread-safe counters written by the worker and read by heartbeats, status lines and health checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._classified: Counter[str] = Counter()
        self._reused: Counter[str] = Counter()
        self.batch_sizes: Counter[int] = Counter()
        self.failed_batches = 0
        self.last_error: Optional[str] = None
        self._last_progress = time.monotonic()
        self._inference_s_total = 0.0

    def record_batch(self, cameras: Iterable[str], inference_s: float) -> None:
        """Count one classified batch."""
        cameras = list(cameras)
        with self._lock:
            self._classified.update(cameras)
            self.batch_sizes[len(cameras)] += 1
            self._inference_s_total += inference_s
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

    def record_failure(self, message: str) -> None:
        """A batch failed; its frames are lost."""
        with self._lock:
            self.failed_batches += 1
            self.last_error = message

    def classified(self, camera: str) -> int:
        """Frames of `camera` classified so far."""
        with self._lock:
            return self._classified[camera]

    def progress_age(self, now: Optional[float] = None) -> float:
        """Seconds since the worker last finished a batch or an idle wait."""
        with self._lock:
            return (time.monotonic() if now is None else now) - self._last_progress

    @property
    def batches(self) -> int:
        """Batches run so far."""
        with self._lock:
            return sum(self.batch_sizes.values())
