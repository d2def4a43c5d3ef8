"""A second look at the picture itself when the features cannot decide between a few known products.

The model sees a frame shrunk to its input size, where a package's printed name is a few pixels: look-alikes that
differ only by their name (one bag of coffee with three brands' names) split a frame between them, and no
scoring of those features tells them apart. Keypoints of the picture at the camera's resolution do: SIFT
descriptors of the frame are matched against each candidate's reference descriptors (from its training or
enrollment pictures), every descriptor clearly nearer one candidate's references than any other candidate's votes
for that candidate, and a candidate wins when it has at least MIN_VOTES votes and MARGIN times the runner-up's. Otherwise
the look abstains and the frame stays split. It runs only on split frames (about 40 ms each on 2 cores).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

LOOK_SIDE = 480
"""Pictures are shrunk so that their longer side is at most this many pixels (a 640×480 frame to 480×360)."""
MAX_KEYPOINTS = 400
REFERENCE_VIEWS = 20
"""Pictures per product the reference descriptors come from (spread evenly over those offered)."""
RATIO = 0.8
"""A descriptor votes when its nearest reference is this much nearer than any other candidate's nearest (Lowe's
ratio test, across candidates)."""
MIN_VOTES = 10
MARGIN = 2.0
DESCRIPTOR_WIDTH = 128
REFERENCE_WIDTH = DESCRIPTOR_WIDTH + 1
"""A stored reference: its descriptor and the number of the view (picture) it came from."""
HELD_OUT_VIEWS = 4
"""Before deciding between candidates, this many of each one's reference views are looked at as if they were
frames (against the other views): the look decides only between products it tells apart on their own pictures."""


def keypoint_descriptors(image: np.ndarray) -> np.ndarray:
    """(n, 128) uint8 SIFT descriptors of a BGR picture (n = 0 for a plain one)."""
    scale = LOOK_SIDE / max(image.shape[:2])
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    _points, descriptors = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS).detectAndCompute(grey, None)
    if descriptors is None:
        return np.zeros((0, DESCRIPTOR_WIDTH), np.uint8)
    return np.clip(np.rint(descriptors), 0, 255).astype(np.uint8)


def reference_descriptors(images: Sequence[np.ndarray], views: int = REFERENCE_VIEWS) -> np.ndarray:
    """One product's references: (n, REFERENCE_WIDTH) uint8 rows, the descriptors of up to `views` of `images`
    (spread evenly over them), each followed by the number of the view it came from."""
    if not len(images):
        return np.zeros((0, REFERENCE_WIDTH), np.uint8)
    picks = np.unique(np.linspace(0, len(images) - 1, min(views, len(images))).round().astype(int))
    rows = [keypoint_descriptors(images[i]) for i in picks]
    return np.concatenate([np.hstack([r, np.full((len(r), 1), view, np.uint8)]) for view, r in enumerate(rows)])


class SecondLook:
    """Reference descriptors per label; `decide` picks one of a few candidates for a picture, or abstains."""

    def __init__(self, references: Mapping[str, np.ndarray], background: Sequence[str] = ()) -> None:
        usable = {label: np.asarray(rows) for label, rows in references.items() if len(rows)}
        self._references = {label: rows[:, :DESCRIPTOR_WIDTH].astype(np.float32) for label, rows in usable.items()}
        self._views = {label: rows[:, DESCRIPTOR_WIDTH].astype(np.int64) for label, rows in usable.items()}
        self._background = [label for label in background if label in self._references]
        """Labels meaning "no product" (an empty belt): their references take part in every vote, so that the
        belt's own keypoints vote for none of the candidates."""
        self._matcher = cv2.BFMatcher(cv2.NORM_L2)
        self._told_apart: dict[frozenset, bool] = {}

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels it can look for."""
        return tuple(self._references)

    def covers(self, candidates: Sequence[str]) -> bool:
        return all(label in self._references for label in candidates)

    def votes(self, image: np.ndarray, candidates: Sequence[str], belt: Optional[np.ndarray] = None) -> np.ndarray:
        """(len(candidates),) votes of the picture's descriptors for each candidate (all must be covered); `belt`:
        descriptors of this camera's empty belt (keypoint_descriptors), which vote for none."""
        return self._votes(keypoint_descriptors(image).astype(np.float32), candidates, {}, belt)

    def _votes(self, query: np.ndarray, candidates: Sequence[str], leave_out: dict[str, int],
               belt: Optional[np.ndarray] = None) -> np.ndarray:
        """A descriptor votes for the candidate with the nearest reference when every other candidate's nearest
        is clearly further (a package's design shared by look-alikes is near all of them and does not vote);
        `leave_out`: a view of a label whose references are not used."""
        counts = np.zeros(len(candidates))
        if len(query) == 0:
            return counts
        pools = [self._pool(label, leave_out.get(label))
                 for label in (*candidates, *(b for b in self._background if b not in candidates))]
        if belt is not None and len(belt):
            pools.append(np.asarray(belt, np.float32))
        nearest = np.stack([self._nearest(query, pool) for pool in pools], axis=1)
        order = np.argsort(nearest, axis=1)
        best, runner_up = order[:, 0], order[:, 1]
        rows = np.arange(len(query))
        clear = (nearest[rows, best] < RATIO * nearest[rows, runner_up]) & (best < len(candidates))
        np.add.at(counts, best[clear], 1)
        return counts

    def _pool(self, label: str, without_view: Optional[int]) -> np.ndarray:
        rows = self._references[label]
        return rows if without_view is None else rows[self._views[label] != without_view]

    def _nearest(self, query: np.ndarray, references: np.ndarray) -> np.ndarray:
        """(n,) distance of each query descriptor to its nearest reference."""
        distance = np.full(len(query), np.inf, np.float32)
        if len(references):
            for match in self._matcher.match(query, references):
                distance[match.queryIdx] = match.distance
        return distance

    def _verdict(self, counts: np.ndarray) -> Optional[int]:
        best = int(np.argmax(counts))
        runner_up = float(np.max(np.delete(counts, best)))
        return best if counts[best] >= MIN_VOTES and counts[best] >= MARGIN * max(runner_up, 1.0) else None

    def tells_apart(self, candidates: Sequence[str]) -> bool:
        """Whether the look decides the candidates' own held-out reference views rightly: never wrong, and right
        on most of each one's. Products that differ only in colour (the look sees grey) are not told apart."""
        key = frozenset(candidates)
        if key not in self._told_apart:
            self._told_apart[key] = all(self._own_views_right(i, candidates) for i in range(len(candidates)))
        return self._told_apart[key]

    def _own_views_right(self, index: int, candidates: Sequence[str]) -> bool:
        label = candidates[index]
        views = np.unique(self._views[label])
        if len(views) < 2:
            return False
        right = 0
        for view in views[np.linspace(0, len(views) - 1, min(HELD_OUT_VIEWS, len(views))).round().astype(int)]:
            query = self._references[label][self._views[label] == view]
            verdict = self._verdict(self._votes(query, candidates, {label: int(view)}))
            if verdict is not None and verdict != index:
                return False
            right += verdict == index
        return right * 2 > min(HELD_OUT_VIEWS, len(views))

    def decide(self, image: np.ndarray, candidates: Sequence[str], belt: Optional[np.ndarray] = None) -> Optional[int]:
        """The index in `candidates` of the product the picture shows, or None when the look cannot tell (a
        candidate without references, candidates it does not tell apart, or too little evidence). `belt`: see
        votes."""
        if len(candidates) < 2 or not self.covers(candidates) or not self.tells_apart(candidates):
            return None
        return self._verdict(self.votes(image, candidates, belt))
