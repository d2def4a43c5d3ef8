"""The Frame: one picture from one camera, stamped at capture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """A BGR uint8 image with its camera id, per-camera sequence number and capture times."""

    camera: str
    seq: int
    captured_at: float
    """Unix time in seconds (for the wire)."""
    captured_mono: float
    """time.monotonic() at capture (for latency)."""
    image: np.ndarray
