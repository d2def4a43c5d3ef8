"""What the worker hands to sinks: one Result per classified frame, and the tracker's item events."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from capture.frame import Frame
from inference.topk import Prediction


@dataclass(frozen=True, eq=False)
class Result:
    """The ranked predictions for one frame (the frame itself is kept for the overlay)."""

    frame: Frame
    topk: tuple[Prediction, ...]
    model: str
    classified_mono: float
    reused: bool = False
    unknown_score: Optional[float] = None
    """How unlike every known product the frame is (0-1), when the model has feature statistics."""
    unknown: bool = False
    """unknown_score reached the configured threshold."""

    @property
    def camera(self) -> str:
        """The camera the frame came from."""
        return self.frame.camera

    @property
    def best(self) -> Prediction:
        """The top-1 prediction."""
        return self.topk[0]


class EventKind(str, enum.Enum):
    """The two checkout events."""

    ITEM_PRESENT = "item_present"
    ITEM_REMOVED = "item_removed"


@dataclass(frozen=True)
class ItemEvent:
    """A stable item appeared on or left a camera's view; removal carries the id of its presence."""

    camera: str
    kind: EventKind
    event_id: str
    label: str
    index: int
    score: float
    frames: int
