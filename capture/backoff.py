"""Capped exponential backoff with jitter, for reconnecting cameras."""

from __future__ import annotations

import random
from typing import Optional


class Backoff:
    """Delays that double from `initial` up to `maximum`, each scaled by a random factor in [0.5, 1]."""

    def __init__(self, initial: float, maximum: float, rng: Optional[random.Random] = None) -> None:
        self._initial = initial
        self._maximum = maximum
        self._rng = rng or random.Random()
        self._failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; grows with each call until reset()."""
        ceiling = min(self._maximum, self._initial * (2 ** min(self._failures, 30)))
        self._failures += 1
        return ceiling * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        """Start again from `initial` (after a success)."""
        self._failures = 0
