"""Is the pipeline really making progress? One answer for the systemd watchdog and for /healthz."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from capture.status import CameraStatus
from capture.thread import MAX_STUCK_READERS
from stream.pipeline.model_slot import ModelState, ModelStatus
from stream.pipeline.stats import WorkerStats

WORKER_STALL_S = 10.0
"""The worker finishes a batch, or an idle wait of 0.2 s, far more often than this unless it is stuck."""
PUBLISHER_STALL_S = 5.0
CAPTURE_STALL_S = 30.0
"""A capture thread goes round its loop (a frame, an open attempt, a retry tick) at least this often."""


@dataclass(frozen=True)
class HealthReport:
    """Healthy, or the reasons why not."""

    healthy: bool
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    """What an operator should know that a restart would not fix (a model server that does not answer)."""


class PipelineHealth:
    """Checks that the worker, the publisher and every capture thread are alive and going round their loops.

    A camera that is offline and being retried is healthy (the process is doing its job); a thread
    that died or hangs is not: systemd should restart the service."""

    def __init__(self, stats: WorkerStats, worker: threading.Thread, publisher, captures: Sequence[threading.Thread],
                 statuses: Sequence[CameraStatus], worker_stall_s: float = WORKER_STALL_S,
                 capture_stall_s: float = CAPTURE_STALL_S,
                 model_status: Optional[Callable[[], ModelStatus]] = None) -> None:
        self._stats, self._worker, self._publisher, self._model_status = stats, worker, publisher, model_status
        self._captures, self._statuses = list(captures), list(statuses)
        self._worker_stall_s, self._capture_stall_s = worker_stall_s, capture_stall_s

    def check(self, now: Optional[float] = None) -> HealthReport:
        """The current verdict."""
        now = time.monotonic() if now is None else now
        reasons = []
        if not self._worker.is_alive():
            reasons.append("inference worker is not running")
        elif self._stats.progress_age(now) > self._worker_stall_s:
            reasons.append(f"inference worker stuck for {self._stats.progress_age(now):.0f} s")
        if not self._publisher.is_alive():
            reasons.append("publisher is not running")
        elif now - self._publisher.last_cycle_mono > PUBLISHER_STALL_S:
            reasons.append(f"publisher stuck for {now - self._publisher.last_cycle_mono:.0f} s")
        for thread, status in zip(self._captures, self._statuses):
            if not thread.is_alive():
                if getattr(thread, "failed", False):
                    reasons.append(f"capture thread of {status.camera} failed")
            elif status.activity_age(now) > self._capture_stall_s:
                reasons.append(f"capture of {status.camera} stuck for {status.activity_age(now):.0f} s")
            elif status.stuck_readers >= MAX_STUCK_READERS:
                reasons.append(f"{status.stuck_readers} readers of {status.camera} are stuck in the camera driver")
        return HealthReport(not reasons, tuple(reasons), self._warnings())

    def _warnings(self) -> tuple[str, ...]:
        """A model that is unavailable leaves the process healthy (restarting it would not bring a server back)."""
        status = self._model_status() if self._model_status is not None else None
        if status is None or status.state is not ModelState.UNAVAILABLE:
            return ()
        detail = f": {self._stats.last_error}" if self._stats.last_error else ""
        return (f"model {status.id} unavailable{detail}",)
