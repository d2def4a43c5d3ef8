"""When fine-tuning stops: after `patience` epochs in which neither validation accuracy nor the smoothed validation
loss got better, and never before the minimum number of epochs.

On a few dozen validation pictures one epoch's loss jumps by a factor of two and back: a raw "best loss" makes
every jump look like progress or its absence. An exponential moving average of the loss (SMOOTHING of the new
value) follows the trend; accuracy, a count of right answers, counts as progress only when it rises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

SMOOTHING = 0.5
"""Weight of the newest epoch in the smoothed validation loss."""
MIN_LOSS_GAIN = 0.01
"""The smoothed loss must fall by at least this share of its best value to count as progress."""


@dataclass
class EarlyStop:
    """Tracks the validation signal epoch by epoch; `update` says whether training should stop."""

    patience: int
    min_epochs: int = 1
    smoothed_loss: Optional[float] = None
    best_loss: float = float("inf")
    best_accuracy: float = -1.0
    stale_epochs: int = 0
    epochs: int = 0

    def update(self, val_loss: float, val_accuracy: float) -> bool:
        """Take one epoch's validation figures; True when training should stop now."""
        self.epochs += 1
        self.smoothed_loss = val_loss if self.smoothed_loss is None else (
            SMOOTHING * val_loss + (1 - SMOOTHING) * self.smoothed_loss)
        progress = val_accuracy > self.best_accuracy or self.smoothed_loss < self.best_loss * (1 - MIN_LOSS_GAIN)
        self.best_accuracy = max(self.best_accuracy, val_accuracy)
        self.best_loss = min(self.best_loss, self.smoothed_loss)
        self.stale_epochs = 0 if progress else self.stale_epochs + 1
        return self.stale_epochs >= self.patience and self.epochs >= self.min_epochs
