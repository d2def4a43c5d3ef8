"""Turn per-frame results into stable checkout events: item_present (or item_unknown) once, item_removed once, per item."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable, Optional

from config.schema import EventsConfig
from inference.open_catalog import LIKE_KNOWN_UP_TO
from inference.topk import Prediction
from stream.pipeline.result import REASON_AMBIGUOUS, REASON_UNKNOWN, EventKind, ItemEvent, Result

UNKNOWN_INDEX = -1
PICK_LIST = 3
NO_RUN = -2
AMBIGUOUS_MAX_UNKNOWN = LIKE_KNOWN_UP_TO
"""A frame split between known products counts as ambiguous only while its unknown_score is at most this: it looks
like known products (a hand over the lane, unlike all of them, never does)."""


@dataclass
class _Run:
    """Consecutive qualifying frames of one label (index UNKNOWN_INDEX: of unknown frames, with their candidates)."""

    index: int = NO_RUN
    label: Optional[str] = None
    frames: int = 0
    score_sum: float = 0.0
    picks: dict[str, list] = field(default_factory=dict)
    ambiguous_frames: int = 0
    """Frames of an unknown run that were split between known products rather than unlike all of them."""

    def extend(self, index: int, label: Optional[str], score: float, ambiguous: bool = False) -> None:
        if index != self.index:
            self.index, self.label, self.frames, self.score_sum, self.picks = index, label, 0, 0.0, {}
            self.ambiguous_frames = 0
        self.frames += 1
        self.score_sum += score
        self.ambiguous_frames += ambiguous

    def add_picks(self, topk: tuple[Prediction, ...]) -> None:
        """Sum each candidate's score over the run (the pick list ranks by it)."""
        for prediction in topk:
            self.picks.setdefault(prediction.label, [prediction, 0.0])[1] += prediction.score

    def pick_list(self) -> tuple[Prediction, ...]:
        ranked = sorted(self.picks.values(), key=lambda entry: -entry[1])[:PICK_LIST]
        return tuple(Prediction(p.label, p.index, total / self.frames, p.source) for p, total in ranked)

    @property
    def unknown(self) -> bool:
        return self.index == UNKNOWN_INDEX

    @property
    def reason(self) -> Optional[str]:
        """Why an unknown run is one: most of its frames unlike every known product, or split between some."""
        if not self.unknown:
            return None
        return REASON_AMBIGUOUS if 2 * self.ambiguous_frames > self.frames else REASON_UNKNOWN

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.frames if self.frames else 0.0


@dataclass
class _Item:
    """The item currently present on one camera."""

    event_id: str
    run: _Run
    misses: int = 0
    picks: tuple[Prediction, ...] = ()
    """An unknown item's pick list as announced (read by screens from other threads, so never mutated)."""
    reason: Optional[str] = None
    """An unknown item's reason as announced: its screen caption keeps it while the item stays."""


@dataclass
class _CameraTrack:
    candidate: _Run = field(default_factory=_Run)
    item: Optional[_Item] = None


class EventTracker:
    """Per camera: a label that holds top-1 for `enter_frames` frames above `min_score` becomes present;
    it is removed after `exit_frames` frames in which it is not top-1 above `exit_score` (hysteresis).
    Frames flagged unknown never count towards a label: `unknown_frames` of them in a row (twice `enter_frames`
    unless set) make an unknown item (item_unknown with a pick list), removed after `exit_frames` frames that are
    not unknown. With `ambiguous_items`, frames split between known products (see `is_ambiguous`) count as unknown
    ones too, so an item the model cannot decide on asks for a pick (after `ambiguous_frames`, when most of the run
    was split: a product moving in is split while half in view) instead of passing silently; and a present
    item stays present through split frames that have it among their top three (no second event for it)."""

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
        """The label of the stable known item on `camera`, or None (also while an unknown item is there)."""
        track = self._tracks.get(camera)
        return track.item.run.label if track and track.item else None

    def item_caption(self, camera: str) -> Optional[str]:
        """What a screen shows for the stable item: its label, `unknown item - attendant (cola can?)`, or None."""
        track = self._tracks.get(camera)
        if not track or not track.item:
            return None
        item = track.item
        if not item.run.unknown:
            return item.run.label
        guesses = ", ".join(p.label for p in item.picks)
        if item.reason == REASON_AMBIGUOUS:
            return f"which one? {guesses} - attendant"
        return f"unknown item - attendant ({guesses}?)" if guesses else "unknown item - attendant"

    def is_ambiguous(self, result: Result) -> bool:
        """A frame no label holds with `min_score` but the top three together do, none of them an ignored label,
        that looks like known products (unknown_score known and at most AMBIGUOUS_MAX_UNKNOWN)."""
        config = self._config
        if not config.ambiguous_items or result.unknown or result.unknown_score is None:
            return False
        top = result.topk[:PICK_LIST]
        return (result.unknown_score <= AMBIGUOUS_MAX_UNKNOWN and top[0].score < config.min_score
                and sum(p.score for p in top) >= config.min_score
                and not any(p.label in config.ignore_labels for p in top))

    def _extend_unknown(self, run: _Run, result: Result, ambiguous: bool) -> None:
        run.extend(UNKNOWN_INDEX, None, result.unknown_score or (0.0 if ambiguous else 1.0), ambiguous)
        run.add_picks(result.topk)

    def _update_absent(self, result: Result, track: _CameraTrack, stale: bool) -> list[ItemEvent]:
        best = result.best
        if stale:
            track.candidate = _Run()
            return []
        ambiguous = self.is_ambiguous(result)
        if result.unknown or ambiguous:
            self._extend_unknown(track.candidate, result, ambiguous)
        elif best.score >= self._config.min_score and best.label not in self._config.ignore_labels:
            track.candidate.extend(best.index, best.label, best.score)
        else:
            track.candidate = _Run()
            return []
        if track.candidate.frames < self._frames_needed(track.candidate):
            return []
        run, track.candidate = track.candidate, _Run()
        track.item = _Item(self._new_id(), run, picks=run.pick_list() if run.unknown else (), reason=run.reason)
        kind = EventKind.ITEM_UNKNOWN if run.unknown else EventKind.ITEM_PRESENT
        return [self._event(result.camera, kind, track.item)]

    def _frames_needed(self, run: _Run) -> int:
        if not run.unknown:
            return self._config.enter_frames
        if run.reason == REASON_AMBIGUOUS:
            return self._config.frames_for_ambiguous
        return self._config.frames_for_unknown

    def _update_present(self, result: Result, track: _CameraTrack) -> list[ItemEvent]:
        item = track.item
        assert item is not None
        best = result.best
        ambiguous = item.run.unknown and self.is_ambiguous(result)
        if item.run.unknown and (result.unknown or ambiguous):
            self._extend_unknown(item.run, result, ambiguous)
            item.misses = 0
            return []
        if not item.run.unknown and best.index == item.run.index and best.score >= self._config.exit_score:
            item.run.extend(best.index, best.label, best.score)
            item.misses = 0
            return []
        if not item.run.unknown and self.is_ambiguous(result) and \
                any(p.index == item.run.index for p in result.topk[:PICK_LIST]):
            item.misses = 0  # still there, split between it and look-alikes: not a new item to ask about
            return []
        item.misses += 1
        if item.misses < self._config.exit_frames:
            return []
        track.item = None
        return [self._event(result.camera, EventKind.ITEM_REMOVED, item)]

    @staticmethod
    def _event(camera: str, kind: EventKind, item: _Item) -> ItemEvent:
        run = item.run
        picks = item.picks if kind is EventKind.ITEM_UNKNOWN else ()
        reason = item.reason if kind is EventKind.ITEM_UNKNOWN else None
        return ItemEvent(camera, kind, item.event_id, run.label, run.index, run.mean_score, run.frames, picks, reason)
