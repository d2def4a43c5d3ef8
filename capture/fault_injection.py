"""A source wrapper that breaks on purpose, for soak runs: forced reconnects and, now and then, a wedged read."""

from __future__ import annotations

import threading
import time
from typing import Optional

import numpy as np

from capture.source import FrameSource, SourceError


class FaultSchedule:
    """Shared by all connections of one camera: counts the faults, so every `wedge_every`-th one wedges."""

    def __init__(self, fault_every_s: float, wedge_every: int, wedge_s: float) -> None:
        self.fault_every_s = fault_every_s
        self.wedge_every = wedge_every
        self.wedge_s = wedge_s
        self.faults = 0
        self._lock = threading.Lock()

    def next_fault_wedges(self) -> bool:
        """Count a fault; True when this one should block the reader instead of failing at once."""
        with self._lock:
            self.faults += 1
            return self.wedge_every > 0 and self.faults % self.wedge_every == 0


class FlakySource:
    """Delivers the wrapped source's frames for `fault_every_s`, then fails (or blocks `wedge_s`, then fails)."""

    def __init__(self, inner: FrameSource, schedule: FaultSchedule) -> None:
        self._inner = inner
        self._schedule = schedule
        self.name = inner.name
        self.is_live = inner.is_live
        self._fails_at: Optional[float] = None

    def open(self) -> None:
        self._inner.open()
        self._fails_at = time.monotonic() + self._schedule.fault_every_s

    def fps(self) -> Optional[float]:
        return self._inner.fps()

    def read(self) -> Optional[np.ndarray]:
        if self._fails_at is not None and time.monotonic() >= self._fails_at:
            self._fails_at = None
            if self._schedule.next_fault_wedges():
                time.sleep(self._schedule.wedge_s)  # stands in for a driver call that hangs, then returns
                raise SourceError(f"{self.name}: forced fault after a wedged read (soak)")
            raise SourceError(f"{self.name}: forced fault (soak)")
        return self._inner.read()

    def close(self) -> None:
        self._inner.close()
