"""Tell two kinds of stall apart while frames still arrive: a frozen camera and a recognizer that is behind.

(The third kind, a silent camera, is a read that overruns its deadline: see capture/reader.py.)
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

THUMBNAIL_SIZE = (32, 24)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A tiny copy of the picture made of single sampled pixels.

    Nearest-neighbour sampling, not averaging: a live camera on a still scene still differs in some
    sampled pixel from frame to frame (sensor noise), while a broken encoder or proxy repeats
    bit-identical pictures. Averaging would smooth the noise away and make still scenes look frozen.
    """
    return cv2.resize(image, THUMBNAIL_SIZE, interpolation=cv2.INTER_NEAREST)


class FreezeDetector:
    """How long a camera's picture has stayed bit-identical; kept across reconnects."""

    def __init__(self) -> None:
        self._previous: Optional[np.ndarray] = None
        self._still_since: Optional[float] = None

    def observe(self, image: np.ndarray, now: float) -> bool:
        """Take the next picture; True when it differs from the previous one."""
        current = thumbnail(image)
        changed = self._previous is None or not np.array_equal(current, self._previous)
        if changed or self._still_since is None:
            self._still_since = now
        self._previous = current
        return changed

    def still_for(self, now: float) -> float:
        """Seconds the picture has not changed (0 before the first picture)."""
        return 0.0 if self._still_since is None else now - self._still_since

    def restart_clock(self, now: float) -> None:
        """Give a new connection the full time before it counts as frozen again."""
        if self._still_since is not None:
            self._still_since = now


def worker_behind(blocked: bool, overflow_age_s: float, take_interval_s: Optional[float], after_s: float) -> bool:
    """Whether a camera is (still) `blocked`: its queue has overflowed for `after_s` without the worker
    taking a frame. It has caught up once the worker takes frames again, at least one per `after_s`
    (so a worker that manages one frame every few seconds does not flap between the two states)."""
    if not blocked:
        return overflow_age_s >= after_s
    caught_up = overflow_age_s < after_s and take_interval_s is not None and take_interval_s < after_s
    return not caught_up
