"""Model speed as the worker sees it: `lanes` threads calling predict at once, each timing its own calls."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import torch

from inference.model import Classifier


@dataclass(frozen=True)
class CallTimes:
    """Per-call latencies (ms) from every lane, and the wall time they took together."""

    latencies_ms: list[float]
    elapsed_s: float
    batch: int

    @property
    def img_per_s(self) -> float:
        return len(self.latencies_ms) * self.batch / self.elapsed_s


def timed_calls(classifier: Classifier, batch: torch.Tensor, seconds: float, lanes: int = 1,
                warmup_calls: int = 2) -> CallTimes:
    """Call `classifier.predict(batch)` from `lanes` threads at once for `seconds` (each lane at least once,
    after `warmup_calls` untimed calls)."""
    for _ in range(warmup_calls):
        classifier.predict(batch)
    per_lane: list[list[float]] = [[] for _ in range(lanes)]
    started = time.perf_counter()

    def lane(latencies: list[float]) -> None:
        while not latencies or time.perf_counter() - started < seconds:
            call = time.perf_counter()
            classifier.predict(batch)
            latencies.append((time.perf_counter() - call) * 1000)

    if lanes == 1:
        lane(per_lane[0])
    else:
        threads = [threading.Thread(target=lane, args=(latencies,), name=f"speed-lane-{i}") for i, latencies in
                   enumerate(per_lane)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    return CallTimes([ms for latencies in per_lane for ms in latencies], elapsed, len(batch))
