"""A source that replays pictures already in memory: a camera whose frames cost nothing to produce (benchmarks)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


class ReplaySource:
    """Cycles through `frames`; paced at `fps` by the capture thread when pacing is on."""

    is_live = False

    def __init__(self, frames: Sequence[np.ndarray], fps: float = 30.0, name: str = "replay") -> None:
        if not frames:
            raise ValueError("ReplaySource needs at least one frame")
        self.name = name
        self._frames = list(frames)
        self._fps = fps
        self._index = 0

    def open(self) -> None:
        """Nothing to open."""

    def fps(self) -> Optional[float]:
        """The replay rate."""
        return self._fps

    def read(self) -> Optional[np.ndarray]:
        """The next picture (a shared array: consumers must not modify frames)."""
        frame = self._frames[self._index % len(self._frames)]
        self._index += 1
        return frame

    def close(self) -> None:
        """Nothing to release."""
