"""A second look at the picture itself when the features cannot decide between a few known products.

The model sees a frame shrunk to its input size, where a package's printed name is a few pixels: look-alikes that
differ only by their name (one bag of coffee with three brands' names) split a frame between them, and no
scoring of those features tells them apart. Keypoints of the picture at the camera's resolution do, when they are
checked for geometry: SIFT keypoints of the frame are matched with each of a candidate's reference pictures
(Lowe's ratio test), and the matches a single affine transform of the picture explains (RANSAC) are counted
(inliers). Between candidates only distinctive matches count: a keypoint whose nearest descriptor among another
candidate's references is not much farther (the shared design of look-alikes) counts for none of them, so a name
tells its package apart even when the rest of the package is the same. A name's letters agree with the
reference's only in the right order and place, so letters shared with a look-alike's name (N and A in NAPIX and
NADEO) do not count for it. The candidate whose best reference picture has at least MIN_INLIERS distinctive
inliers and MARGIN times the runner-up's wins; otherwise the look abstains and the frame stays split (unless the
picture shows too little of its candidates: see Verdict). It runs on
split frames (about 55 ms each on 2 cores), and, to confirm a confident label (confirmation.py), on one frame per
batch and camera until the label is confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

LOOK_SIDE = 480
"""Pictures are shrunk so that their longer side is at most this many pixels (a 640×480 frame to 480×360)."""
MAX_KEYPOINTS = 400
REFERENCE_VIEWS = 20
"""Pictures per product the references come from (spread evenly over those offered)."""
RATIO = 0.8
"""A keypoint matches a reference picture's when its nearest descriptor there is this much nearer than the second
nearest (Lowe's ratio test)."""
DISTINCT_RATIO = 0.7
"""Between candidates a match counts only when it is this much nearer than the nearest descriptor of every other
candidate's references (stricter than RATIO: another candidate offers 20 pictures' keypoints to be near)."""
MIN_MATCHES = 6
RANSAC_PIXELS = 6.0
"""A match agrees with a transform when it lands within this many pixels (of the picture shrunk to LOOK_SIDE)."""
RANSAC_ITERATIONS = 500
MIN_INLIERS = 10
"""Distinctive inliers a candidate needs to win (2026-12-07, at rest: a tea box with green tea's design and another
name 10-15 against green tea's 0, where all inliers were 29-38 against 28-33; a never-enrolled NALURO bag at most 8
for the enrolled NAPIX bag of its design)."""
MARGIN = 1.5
BELT_PIXELS = 2.0
BELT_DISTANCE = 200.0
"""A frame's keypoint within BELT_PIXELS of one of the camera's empty belt, with a descriptor this near, is the
belt's: it takes no part in a look."""
DESCRIPTOR_WIDTH = 128
POSITION_SCALE = 8
"""Positions are stored in 1/8 pixels, each coordinate as two bytes (high first)."""
REFERENCE_WIDTH = DESCRIPTOR_WIDTH + 1 + 4
"""A stored reference (uint8 row): its descriptor, the number of the view (picture) it came from, and its position
(x, y) in that picture shrunk to LOOK_SIDE."""
OLDER_REFERENCE_WIDTH = DESCRIPTOR_WIDTH + 1
"""References stored before 2026-12-07, without positions: the look cannot use them (the product is enrolled, or
the bundle trained, again to get new ones)."""
HELD_OUT_VIEWS = 4
"""Before deciding between candidates, this many of each one's reference views are looked at as if they were
frames (against the other views): the look decides only between products it never confuses on their own pictures
and tells apart on at least half of one's."""
CONFIRM_MIN_OWN = 12
"""Only labels whose own level is at least this many inliers are confirmed: a plain package's pictures share too
few keypoints for a missing match to mean anything (2026-12-07: genuine products of such labels showed 0-4 inliers
at rest)."""
CONFIRM_SHARE = 0.75
"""A frame confirms its label when its inliers reach this share of the label's own level (2026-12-07, the demo's
second product set: genuine products at rest 0.86 or more, never-enrolled products taken for a label 0.12-0.61)."""


@dataclass(frozen=True)
class Verdict:
    """A look at a frame split between candidates: the index of the one it shows (`winner`), or none; `short_of`:
    the index of a candidate the picture shows too little of, as a label that is not confirmed (another product):
    the winner of the distinctive keypoints (another name on its design), or the first candidate when none wins and
    the picture shows too little of every one, all of which can be confirmed (another can on the design of two)."""

    winner: Optional[int] = None
    short_of: Optional[int] = None


@dataclass(frozen=True)
class Keypoints:
    """A picture's SIFT keypoints: positions (n, 2) in the picture shrunk to LOOK_SIDE, descriptors (n, 128)."""

    points: np.ndarray
    descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.points)

    def subset(self, keep: np.ndarray) -> "Keypoints":
        return Keypoints(self.points[keep], self.descriptors[keep])


def keypoints_of(image: np.ndarray) -> Keypoints:
    """The SIFT keypoints of a BGR picture (none for a plain one)."""
    scale = LOOK_SIDE / max(image.shape[:2])
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    points, descriptors = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS).detectAndCompute(grey, None)
    if descriptors is None or not points:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_WIDTH), np.float32))
    positions = np.float32([p.pt for p in points])
    return Keypoints(positions, np.clip(np.rint(descriptors), 0, 255).astype(np.float32))


def reference_descriptors(images: Sequence[np.ndarray], views: int = REFERENCE_VIEWS) -> np.ndarray:
    """One product's references: (n, REFERENCE_WIDTH) uint8 rows from up to `views` of `images` (spread evenly over
    them): each keypoint's descriptor, the number of its view and its position."""
    if not len(images):
        return np.zeros((0, REFERENCE_WIDTH), np.uint8)
    picks = np.unique(np.linspace(0, len(images) - 1, min(views, len(images))).round().astype(int))
    return np.concatenate([_rows(keypoints_of(images[i]), view) for view, i in enumerate(picks)])


def _rows(found: Keypoints, view: int) -> np.ndarray:
    fixed = np.clip(np.rint(found.points * POSITION_SCALE), 0, 65535).astype(np.uint16)
    position = np.stack([fixed[:, 0] >> 8, fixed[:, 0] & 255, fixed[:, 1] >> 8, fixed[:, 1] & 255], axis=1)
    return np.hstack([found.descriptors.astype(np.uint8), np.full((len(found), 1), view, np.uint8),
                      position.astype(np.uint8)])


def _views_of(rows: np.ndarray) -> dict[int, Keypoints]:
    """Stored reference rows → each view's keypoints."""
    rows = np.asarray(rows)
    wide = rows[:, DESCRIPTOR_WIDTH + 1:].astype(np.float32)
    points = np.stack([wide[:, 0] * 256 + wide[:, 1], wide[:, 2] * 256 + wide[:, 3]], axis=1) / POSITION_SCALE
    descriptors = rows[:, :DESCRIPTOR_WIDTH].astype(np.float32)
    views = rows[:, DESCRIPTOR_WIDTH].astype(np.int64)
    return {int(v): Keypoints(points[views == v], descriptors[views == v]) for v in np.unique(views)}


def off_belt(found: Keypoints, belt: Optional[Keypoints]) -> Keypoints:
    """`found` without the keypoints of the camera's empty `belt` (same place, like descriptor)."""
    if belt is None or not len(belt) or not len(found):
        return found
    near = np.linalg.norm(found.points[:, None, :] - belt.points[None, :, :], axis=2) <= BELT_PIXELS
    alike = np.zeros(len(found), bool)
    for i, j in zip(*np.nonzero(near)):
        alike[i] |= float(np.linalg.norm(found.descriptors[i] - belt.descriptors[j])) <= BELT_DISTANCE
    return found.subset(~alike)


@dataclass(frozen=True)
class _Matched:
    """A query's matches with one reference picture: those passing the ratio test, and the distance of each query
    keypoint's nearest descriptor there (inf when it has none)."""

    pairs: list
    view: Keypoints
    nearest: np.ndarray

    def within(self, distances: np.ndarray) -> "_Matched":
        """Only the matches nearer than `distances` (one per query keypoint)."""
        return _Matched([m for m in self.pairs if m.distance < distances[m.queryIdx]], self.view, self.nearest)


def _match(matcher: cv2.BFMatcher, query: Keypoints, view: Keypoints) -> _Matched:
    if len(query) < 2 or len(view) < 2:
        return _Matched([], view, np.full(len(query), np.inf))
    pairs = matcher.knnMatch(query.descriptors, view.descriptors, k=2)
    nearest = np.array([found[0].distance if found else np.inf for found in pairs])
    return _Matched([p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance], view, nearest)


def _best_fit(query: Keypoints, matched: Sequence[_Matched]) -> int:
    """The most inliers of any of the matched reference pictures: pictures are fitted in order of their matches
    (a picture with no more matches than the best inliers so far cannot beat it)."""
    best = 0
    for found in sorted(matched, key=lambda m: -len(m.pairs)):
        if len(found.pairs) <= best:
            break
        best = max(best, _agreeing(query, found.view, found.pairs))
    return best


def _agreeing(query: Keypoints, view: Keypoints, pairs: list) -> int:
    """How many of the query's matches with one reference picture a single affine transform explains."""
    if len(pairs) < MIN_MATCHES:
        return 0
    source = view.points[[m.trainIdx for m in pairs]]
    target = query.points[[m.queryIdx for m in pairs]]
    _transform, mask = cv2.estimateAffine2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS,
                                            maxIters=RANSAC_ITERATIONS, confidence=0.99, refineIters=0)
    return int(mask.sum()) if mask is not None else 0


class SecondLook:
    """Reference keypoints per label; `decide` picks one of a few candidates for a picture, or abstains."""

    def __init__(self, references: Mapping[str, np.ndarray], recorded: Sequence[str] = ()) -> None:
        """`recorded`: labels enrolled from a camera recording, never confirmed (their references' own level counts
        the recording's belt and hand: 23-198 inliers where the product on the lane shows 0-58)."""
        usable = {label: np.asarray(rows) for label, rows in references.items()
                  if len(rows) and np.asarray(rows).shape[1] == REFERENCE_WIDTH}
        self._views = {label: _views_of(rows) for label, rows in usable.items()}
        self._matcher = cv2.BFMatcher(cv2.NORM_L2)
        self._told_apart: dict[frozenset, bool] = {}
        self._own_levels: dict[str, float] = {}
        self._recorded = frozenset(recorded)

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels it can look for."""
        return tuple(self._views)

    def covers(self, candidates: Sequence[str]) -> bool:
        return all(label in self._views for label in candidates)

    def inliers(self, image: np.ndarray, candidates: Sequence[str], belt: Optional[Keypoints] = None) -> np.ndarray:
        """(len(candidates),) for each candidate (all must be covered), the inliers of its best reference picture;
        `belt`: keypoints of this camera's empty belt, which never count."""
        query = off_belt(keypoints_of(image), belt)
        return np.array([_best_fit(query, self._matched(query, label, None)) for label in candidates])

    def _distinct(self, query: Keypoints, candidates: Sequence[str], leave_out: dict[str, int]
                  ) -> tuple[np.ndarray, dict[str, list[_Matched]]]:
        """Each candidate's distinctive inliers (matches nearer than DISTINCT_RATIO times the nearest descriptor of
        every other candidate's references), and its matched views; `leave_out`: a view of a label that is not used."""
        matched = {label: self._matched(query, label, leave_out.get(label)) for label in candidates}
        nearest = {label: np.min([m.nearest for m in found], axis=0) if found else np.full(len(query), np.inf)
                   for label, found in matched.items()}
        counts = []
        for label in candidates:
            rival = np.min([nearest[other] for other in candidates if other != label], axis=0)
            counts.append(_best_fit(query, [m.within(DISTINCT_RATIO * rival) for m in matched[label]]))
        return np.array(counts), matched

    def _matched(self, query: Keypoints, label: str, without_view: Optional[int]) -> list[_Matched]:
        return [_match(self._matcher, query, view) for number, view in self._views[label].items()
                if number != without_view]

    def _verdict(self, counts: np.ndarray) -> Optional[int]:
        best = int(np.argmax(counts))
        runner_up = float(np.max(np.delete(counts, best)))
        return best if counts[best] >= MIN_INLIERS and counts[best] >= MARGIN * max(runner_up, 1.0) else None

    def tells_apart(self, candidates: Sequence[str]) -> bool:
        """Whether the look decides the candidates' own held-out reference views rightly: never wrong, and right
        on at least half of one's. Products that differ only in colour (the look sees grey) are not told apart."""
        key = frozenset(candidates)
        if key not in self._told_apart:
            tallies = [self._own_views_tally(i, candidates) for i in range(len(candidates))]
            self._told_apart[key] = all(t is not None for t in tallies) and any(tallies)
        return self._told_apart[key]

    def _own_views_tally(self, index: int, candidates: Sequence[str]) -> Optional[bool]:
        """None when the look gets one of the candidate's held-out views wrong (or it has fewer than two), else
        whether it gets at least half of them right."""
        label = candidates[index]
        views = sorted(self._views[label])
        if len(views) < 2:
            return None
        picks = np.unique(np.linspace(0, len(views) - 1, min(HELD_OUT_VIEWS, len(views))).round().astype(int))
        right = 0
        for view in (views[i] for i in picks):
            verdict = self._verdict(self._distinct(self._views[label][view], candidates, {label: view})[0])
            if verdict is not None and verdict != index:
                return None
            right += verdict == index
        return right * 2 >= len(picks)

    def own_level(self, label: str) -> float:
        """The median inliers of the label's reference views, each looked at as a frame against the others: how
        much of the label a picture of it shows (0 for a label without references; 65 ms for corn flakes, once).
        Fewer views make it noisy: a tube whose 20 views give 10 gave 14.5 on 6 of them."""
        if label not in self._own_levels:
            views = self._views.get(label, {})
            counts = [_best_fit(found, self._matched(found, label, view)) for view, found in views.items()] \
                if len(views) > 1 else []
            self._own_levels[label] = float(np.median(counts)) if counts else 0.0
        return self._own_levels[label]

    def can_confirm(self, label: str) -> bool:
        """Whether `label` has references whose own level (CONFIRM_MIN_OWN) lets a look confirm it (never a
        recorded one)."""
        return label in self._views and label not in self._recorded and self.own_level(label) >= CONFIRM_MIN_OWN

    def confirms(self, image: np.ndarray, label: str, belt: Optional[Keypoints] = None) -> Optional[bool]:
        """Whether the picture shows as much of `label` as its own pictures show of it (CONFIRM_SHARE of own_level);
        None when the look cannot tell (see can_confirm)."""
        if not self.can_confirm(label):
            return None
        return bool(self.inliers(image, [label], belt)[0] >= CONFIRM_SHARE * self.own_level(label))

    def decide(self, image: np.ndarray, candidates: Sequence[str], belt: Optional[Keypoints] = None) -> Optional[int]:
        """The index in `candidates` of the product the picture shows, or None when the look cannot tell."""
        return self.look(image, candidates, belt).winner

    def look(self, image: np.ndarray, candidates: Sequence[str], belt: Optional[Keypoints] = None) -> Verdict:
        """Which of `candidates` the picture shows; no winner when the look cannot tell (a candidate without
        references, candidates it does not tell apart, or too little evidence). A winner the look can confirm must
        also show CONFIRM_SHARE of its own level: a never-enrolled package with its design and another name has the
        winner's distinctive keypoints, not all of them (the verdict's `short_of`); without a winner, a picture
        that shows under CONFIRM_SHARE of every candidate's level (all confirmable) is short of the first. `belt`:
        see inliers."""
        if len(candidates) < 2 or not self.covers(candidates) or not self.tells_apart(candidates):
            return Verdict()
        query = off_belt(keypoints_of(image), belt)
        counts, matched = self._distinct(query, candidates, {})
        verdict = self._verdict(counts)
        if verdict is None:
            return Verdict(short_of=0) if self._none_shown(query, candidates, matched) else Verdict()
        if not self.can_confirm(candidates[verdict]):
            return Verdict(verdict)
        shown = _best_fit(query, matched[candidates[verdict]])
        return Verdict(verdict) if shown >= CONFIRM_SHARE * self.own_level(candidates[verdict]) else Verdict(
            short_of=verdict)

    def _none_shown(self, query: Keypoints, candidates: Sequence[str], matched: dict[str, list[_Matched]]) -> bool:
        """Whether every candidate can be confirmed and the picture shows too little of each."""
        return all(self.can_confirm(label) and _best_fit(query, matched[label]) < CONFIRM_SHARE * self.own_level(label)
                   for label in candidates)
