"""Turn per-frame results into stable checkout events: item_present once, item_removed once, per item."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable, Optional

from config.schema import EventsConfig
from stream.pipeline.result import EventKind, ItemEvent, Result


@dataclass
class _Run:
    """Consecutive qualifying frames of one label."""

    index: int = -1
    label: str = ""
    frames: int = 0
    score_sum: float = 0.0

    def extend(self, index: int, label: str, score: float) -> None:
        if index != self.index:
            self.index, self.label, self.frames, self.score_sum = index, label, 0, 0.0
        self.frames += 1
        self.score_sum += score

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.frames if self.frames else 0.0


@dataclass
class _Item:
    """The item currently present on one camera."""

    event_id: str
    run: _Run
    misses: int = 0


@dataclass
class _CameraTrack:
    candidate: _Run = field(default_factory=_Run)
    item: Optional[_Item] = None


class EventTracker:
    """Per camera: a label that holds top-1 for `enter_frames` frames above `min_score` becomes present;
    it is removed after `exit_frames` frames in which it is not top-1 above `exit_score` (hysteresis)."""

    def __init__(self, config: EventsConfig, new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self._config = config
        self._new_id = new_id
        self._tracks: dict[str, _CameraTrack] = {}

    def update(self, result: Result, stale: bool = False) -> list[ItemEvent]:
        """Feed one result; return the events it causes (usually none)."""
        track = self._tracks.setdefault(result.camera, _CameraTrack())
        if track.item is not None:
            return self._update_present(result, track)
        return self._update_absent(result, track, stale)

    def current_item(self, camera: str) -> Optional[str]:
        """The label of the stable item on `camera`, or None."""
        track = self._tracks.get(camera)
        return track.item.run.label if track and track.item else None

    def _update_absent(self, result: Result, track: _CameraTrack, stale: bool) -> list[ItemEvent]:
        best = result.best
        qualifies = (
            not stale and best.score >= self._config.min_score and best.label not in self._config.ignore_labels
        )
        if not qualifies:
            track.candidate = _Run()
            return []
        track.candidate.extend(best.index, best.label, best.score)
        if track.candidate.frames < self._config.enter_frames:
            return []
        track.item = _Item(self._new_id(), track.candidate)
        track.candidate = _Run()
        return [self._event(result.camera, EventKind.ITEM_PRESENT, track.item)]

    def _update_present(self, result: Result, track: _CameraTrack) -> list[ItemEvent]:
        item = track.item
        assert item is not None
        best = result.best
        if best.index == item.run.index and best.score >= self._config.exit_score:
            item.run.extend(best.index, best.label, best.score)
            item.misses = 0
            return []
        item.misses += 1
        if item.misses < self._config.exit_frames:
            return []
        track.item = None
        return [self._event(result.camera, EventKind.ITEM_REMOVED, item)]

    @staticmethod
    def _event(camera: str, kind: EventKind, item: _Item) -> ItemEvent:
        run = item.run
        return ItemEvent(camera, kind, item.event_id, run.label, run.index, run.mean_score, run.frames)
