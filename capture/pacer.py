"""Deliver frames of non-live sources at their nominal rate."""

from __future__ import annotations

import threading
import time
from typing import Optional


class Pacer:
    """Waits until the next frame is due; without a rate it never waits."""

    def __init__(self, fps: Optional[float]) -> None:
        self._interval = 1.0 / fps if fps else 0.0
        self._next_due: Optional[float] = None

    def wait(self, stop: threading.Event) -> None:
        """Sleep (interruptibly) until the next frame is due; resynchronise after falling behind."""
        if not self._interval:
            return
        now = time.monotonic()
        self._next_due = now if self._next_due is None else self._next_due + self._interval
        if self._next_due < now - self._interval:
            self._next_due = now
        stop.wait(max(0.0, self._next_due - now))
