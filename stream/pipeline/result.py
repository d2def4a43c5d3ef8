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
    second_look: bool = False
    """The frame was split between known products and a second look at the picture decided it."""
    unconfirmed: bool = False
    """The features were confident, the picture's keypoints did not confirm the label: scores lowered."""

    @property
    def camera(self) -> str:
        """The camera the frame came from."""
        return self.frame.camera

    @property
    def best(self) -> Prediction:
        """The top-1 prediction."""
        return self.topk[0]


REASON_UNKNOWN = "unknown"
"""item_unknown's reason: its frames were unlike every known product."""
REASON_AMBIGUOUS = "ambiguous"
"""item_unknown's reason: it looked like known products, split between its candidates."""


class EventKind(str, enum.Enum):
    """The checkout events."""

    ITEM_PRESENT = "item_present"
    ITEM_REMOVED = "item_removed"
    ITEM_UNKNOWN = "item_unknown"
    """A stable item unlike every known product: for an attendant, with a pick list; never charged."""


@dataclass(frozen=True)
class ItemEvent:
    """A stable item appeared on or left a camera's view; removal carries the id of its presence.
    An unknown item has label None and index -1; its score is the mean unknown_score."""

    camera: str
    kind: EventKind
    event_id: str
    label: Optional[str]
    index: int
    score: float
    frames: int
    candidates: tuple[Prediction, ...] = ()
    """item_unknown: the products it looks most like (mean score over its frames), best first: the pick list."""
    reason: Optional[str] = None
    """item_unknown: "unknown" (unlike every known product) or "ambiguous" (split between the candidates)."""
