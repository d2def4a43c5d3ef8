"""Confirming a confident label with the picture's keypoints, per camera.

The features take a package with another name on a known design (a corn-flakes box saying MIKAPIX), or another
shape in a known colour, for the known product with full confidence: nothing in them tells the two apart. The
picture at the camera's resolution does: a genuine product at rest shows about as many inliers with its label's
reference pictures as those pictures show with each other (SecondLook.own_level), a look-alike a fraction.

A label enrolled from photos is also confirmed by its colours (colour_look.py): a frame whose product does not show
them does not confirm it, whatever its keypoints. So while a camera shows a label confidently, its newest such frame
of each batch is looked at until one confirms the label (then the label holds without looks until the camera shows
something else). Frames that do not confirm it lose their confidence (scores times UNCONFIRMED_SCALE: they count
towards no event); after UNCONFIRMED_FRAMES of them the item is unknown (`unknown_score` 1). A product moving in
shows too little of itself for a while: it is confirmed at rest, so only the first of these frames wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from inference.colour_look import ColourLook
from inference.second_look import Keypoints, SecondLook

UNCONFIRMED_FRAMES = 20
"""Frames of a camera's label that do not confirm it before the item is unknown (2026-12-07: a genuine product
moving in confirmed within 12 frames, at rest always)."""
UNCONFIRMED_SCALE = 0.45
"""An unconfirmed frame's scores are multiplied by this (by 0.9 × events.min_score when that is lower): below
events.min_score, its top three together too (no pick list either)."""


@dataclass
class _Track:
    """One camera's confident label, whether a frame confirmed it, and how many of its frames did not."""

    label: int = -1
    confirmed: bool = False
    failed: int = 0


@dataclass(frozen=True)
class EmptyBelt:
    """One camera's empty belt: its keypoints (which count for no product) and its picture shrunk for colours."""

    keypoints: Keypoints
    picture: np.ndarray


@dataclass(frozen=True)
class Confirmed:
    """Rows whose label did not hold (`demoted`) and, of those, the ones that make the item unknown."""

    demoted: np.ndarray
    unknown: np.ndarray


class Confirmation:
    """The per-camera state of confirming labels; `look` holds every label's references, `colours` the colour
    signatures of the labels enrolled from photos."""

    def __init__(self, look: SecondLook, colours: ColourLook, labels: Sequence[str], background: Sequence[int],
                 confident: float) -> None:
        self.look, self.colours, self.labels = look, colours, tuple(labels)
        self._background, self._confident = set(background), confident
        self._tracks: dict[str, _Track] = {}

    def check(self, ranking: np.ndarray, combined: np.ndarray, skip: np.ndarray, images: Sequence[np.ndarray],
              sources: Sequence[str], belt_of: Callable[[str], Optional[EmptyBelt]], looks: int,
              doubted: Optional[np.ndarray] = None) -> Confirmed:
        """Rows in time order. `skip`: rows the second look already decided; `looks`: at most this many looks;
        `doubted`: per row, the label a second look at the split frame found too little of (-1: none), which counts
        as a frame that does not confirm that label (unless the camera's label was confirmed already)."""
        top = ranking.argmax(axis=1)
        confident = (combined[np.arange(len(top)), top] >= self._confident) & ~skip
        verdicts = self._verdicts(top, confident, images, sources, belt_of, looks)
        doubts = np.zeros(len(top), bool) if doubted is None else doubted >= 0
        shown = np.where(doubts, doubted, top) if doubted is not None else top
        demoted, unknown = np.zeros(len(top), bool), np.zeros(len(top), bool)
        for row, (label, source) in enumerate(zip(shown.tolist(), sources)):
            if not (confident[row] or doubts[row]):
                continue
            track = self._track(source, label)
            if label in self._background:
                continue
            verdict = (None if track.confirmed else False) if doubts[row] else verdicts.get((source, label))
            if verdict is not False:
                track.confirmed = track.confirmed or bool(verdict)
                continue
            track.failed += 1
            demoted[row], unknown[row] = True, track.failed > UNCONFIRMED_FRAMES
        return Confirmed(demoted, unknown)

    def _track(self, source: str, label: int) -> _Track:
        """The camera's track, a new one when its label changes."""
        track = self._tracks.get(source)
        if track is None or label != track.label:
            self._tracks[source] = track = _Track(label)
        return track

    def _verdicts(self, top: np.ndarray, confident: np.ndarray, images: Sequence[np.ndarray], sources: Sequence[str],
                  belt_of: Callable[[str], Optional[EmptyBelt]], looks: int) -> dict[tuple[str, int], Optional[bool]]:
        """Per (camera, label) shown confidently in this batch: whether its newest frame confirms it (None: already
        confirmed, or a label the look cannot confirm; with no looks left, an unconfirmed label stays so)."""
        verdicts: dict[tuple[str, int], Optional[bool]] = {}
        for row in reversed(range(len(top))):
            key = (sources[row], int(top[row]))
            if not confident[row] or key in verdicts or key[1] in self._background:
                continue
            track = self._tracks.get(key[0])
            mine = track is not None and track.label == key[1]
            label = self.labels[key[1]]
            if mine and track.confirmed or not (self.look.can_confirm(label) or self.colours.can_confirm(label)):
                verdicts[key] = None
            elif looks <= 0:
                verdicts[key] = False if mine and track.failed else None
            else:
                looks -= 1
                verdicts[key] = self._confirms(images[row], label, belt_of(key[0]))
        return verdicts

    def _confirms(self, image: np.ndarray, label: str, belt: Optional[EmptyBelt]) -> Optional[bool]:
        """False when the colours or the keypoints say no, True when one says yes and neither no, else None."""
        by_colour = self.colours.confirms(image, label, None if belt is None else belt.picture)
        if by_colour is False:
            return False
        by_keypoints = self.look.confirms(image, label, None if belt is None else belt.keypoints)
        return by_colour if by_keypoints is None else by_keypoints
