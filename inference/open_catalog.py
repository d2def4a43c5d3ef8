"""Recognition over the trained head and the gallery at once: one ranked list per frame, and how unlike any known
product the frame is.

Every label, trained or enrolled, has prototypes in the same (centred, unit-length) feature space. A softmax over
each label's best cosine similarity (times a temperature) says how much of the frame's probability belongs to
each enrolled product and how much to the trained ones together; the trained share is then split the way the
head, which knows its own products best, splits it; where the head finds the belt more likely than not, the
background labels keep the head's probability (BELT_KEEPS_FROM). With an empty gallery the list is exactly the
head's, except that a frame split between a few known products, given with its picture, gets a second look
(second_look.py): when the picture's keypoints decide, the winner takes the candidates' shares.

`unknown_score` is the share of known validation pictures that were more similar to their nearest prototype
than this frame is to any: 0.5 is a typical known picture, 0.99 is further from every known product than 99%
of them. The head and the picture's checks adjust it:
- where the head gives the background labels together at least BELT_SHARE_NOT_UNKNOWN (an empty lane, a hand
  passing over or resting on it, or a product the colour of the belt) the score is scaled to at most
  LIKE_KNOWN_UP_TO (and below the threshold): such a frame is never flagged by itself, but a far one still ranks
  above a near one;
- a frame whose picture does not confirm its confident label (confirmation.py), or a split frame that looks like
  known products (score at most LIKE_KNOWN_UP_TO) whose second look shows too little of them, scores at least just
  below the threshold (its scores are lowered, so it counts towards no event), and 1 once the item is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from inference.colour_look import ColourLook, shrunk
from inference.confirmation import UNCONFIRMED_SCALE, Confirmation, Confirmed, EmptyBelt
from inference.feature_stats import CALIBRATION_QUANTILES, FeatureStats
from inference.gallery import Gallery
from inference.second_look import Keypoints, SecondLook, Verdict, keypoints_of
from inference.topk import Prediction

DEFAULT_TEMPERATURE = 20.0
DEFAULT_UNKNOWN_THRESHOLD = 0.98
"""model.unknown_threshold's default: the unknown_score from which a result is flagged unknown."""
BELOW_THRESHOLD = 0.01
"""The highest score of a frame that the rules keep from the flag is this much below the unknown threshold."""
LIKE_KNOWN_UP_TO = 0.9
"""A frame split between known products whose unknown_score is at most this looks like them: the events make it a
pick (ambiguous). A frame on the belt (BELT_SHARE_NOT_UNKNOWN) is scaled to at most this, so it stays a pick as when
its score was 0: a bag the colour of the belt, split between known products."""
DEFAULT_SPLIT_BELOW = 0.5
"""A frame whose best label has less than this (events.min_score) is split; see second_look."""
SPLIT_CANDIDATES = 3
BELT_EVERY = 30
"""One frame in this many of a camera's empty belt refreshes the belt keypoints a second look discounts."""
BELT_SCORE = 0.95
"""The head's probability of a background label from which a frame is the empty belt, for its keypoints."""
LOOKS_PER_BATCH = 16
"""At most this many second looks per batch (about 55 ms each on 2 cores), so a long split stays bounded."""
CONFIRM_LOOKS_PER_BATCH = 4
"""At most this many looks per batch confirming confident labels (one per camera showing an unconfirmed label)."""
BELT_SHARE_NOT_UNKNOWN = 0.25
"""The head's probability of the background labels together from which a frame is not flagged an unknown item: a
hand resting on the empty belt leaves it much of the belt (0.3-0.6), an unknown product rarely (median 0.02; a bag
the colour of the belt 0.40, whose score is therefore scaled rather than zeroed: 0 cost 0.04 of AUROC, 2026-12-07)."""

BELT_KEEPS_FROM = 0.5
"""The head's probability of the background labels together from which the combination leaves them at least as
much: the head thinks it more likely than not that no product is in view (a hand resting on the empty lane,
0.59, that the features put nearest an enrolled can), so no enrolled product can reach a min_score above 0.5.
An enrolled product at rest that the head cannot place leaves the belt 0.35-0.40 (demo, open lane)."""


@dataclass(frozen=True)
class Recognition:
    """One frame's ranked labels (best first) and its unknown score."""

    ranked: tuple[Prediction, ...]
    unknown_score: float
    second_look: bool = False
    """The frame was split between known products and the second look decided it."""
    unconfirmed: bool = False
    """The features were confident, the picture's keypoints did not confirm the label (confirmation.py): the scores
    were lowered, and after a while the frame is unknown."""


class OpenCatalog:
    """The trained labels (with their feature statistics) and the gallery of one model; `background_labels`:
    trained labels that mean "no product" (e.g. events.ignore_labels), never an unknown item; `unknown_threshold`:
    model.unknown_threshold, which the rules above keep frames below."""

    def __init__(self, head_labels: Sequence[str], stats: FeatureStats, gallery: Gallery,
                 temperature: float = DEFAULT_TEMPERATURE, background_labels: Sequence[str] = (),
                 split_below: float = DEFAULT_SPLIT_BELOW, unknown_threshold: float = DEFAULT_UNKNOWN_THRESHOLD
                 ) -> None:
        self.head_labels = tuple(head_labels)
        self._background = [i for i, label in enumerate(self.head_labels) if label in set(background_labels)]
        self.stats, self.gallery, self.temperature = stats, gallery, temperature
        rows, owners = gallery.matrix()
        all_owners = np.concatenate([stats.owners, owners + len(self.head_labels)]).astype(np.int64)
        self._prototypes = torch.from_numpy(np.concatenate([stats.prototypes, rows]).astype(np.float32))
        self._owners = torch.from_numpy(all_owners)
        self._mean = torch.from_numpy(np.asarray(stats.mean, np.float32))
        """In torch, like the model: numpy's BLAS threads spinning beside torch's cost more than the arithmetic."""
        self.labels = self.head_labels + gallery.labels
        self._quantiles = np.asarray(stats.known_similarity, np.float64)
        self.second_look = SecondLook({**stats.keypoints_by_label(self.head_labels), **gallery.keypoints_by_label()},
                                      gallery.recorded_labels())
        self.split_below = split_below
        self._highest_unflagged = max(0.0, unknown_threshold - BELOW_THRESHOLD)
        self._belt_scale = min(LIKE_KNOWN_UP_TO, self._highest_unflagged)
        self._belts: dict[str, tuple[int, Optional[EmptyBelt]]] = {}
        """Per camera: frames of its empty belt seen since the last one looked at, and that one."""
        self._confirmation = Confirmation(self.second_look, ColourLook(gallery.colours_by_label()), self.labels,
                                          self._background, split_below)

    @property
    def prototype_count(self) -> int:
        """Prototypes of trained and enrolled labels together."""
        return int(self._prototypes.shape[0])

    def recognize(self, logits: torch.Tensor, features: torch.Tensor, k: int,
                  images: Optional[Sequence[np.ndarray]] = None, sources: Optional[Sequence[str]] = None
                  ) -> list[Recognition]:
        """For each row, the k best labels over head and gallery, and the unknown score. With the rows' `images`
        (and the camera of each, `sources`), frames split between known products get a second look."""
        similarity = self.label_similarity(features)
        unknown = self.unknown_scores(similarity.max(axis=1))
        head = _softmax(logits.float().numpy())
        belt_share = self._belt_share(head)
        combined = self._combine(head, belt_share, similarity).copy()
        ranking = combined.copy()
        looked, checked = self._check_pictures(head, combined, ranking, unknown, images, sources)
        best = np.argsort(-ranking, axis=1)[:, :k]
        unknown[belt_share >= BELT_SHARE_NOT_UNKNOWN] *= self._belt_scale
        unknown[checked.demoted] = np.maximum(unknown[checked.demoted], self._highest_unflagged)
        unknown[checked.unknown] = 1.0
        trained = len(self.head_labels)
        return [Recognition(tuple(Prediction(self.labels[i], int(i), float(row[i]), "head" if i < trained else "gallery")
                                  for i in order), float(score), bool(decided), bool(demoted))
                for row, order, score, decided, demoted in zip(combined, best, unknown, looked, checked.demoted)]

    def _check_pictures(self, head: np.ndarray, combined: np.ndarray, ranking: np.ndarray, unknown: np.ndarray,
                        images: Optional[Sequence[np.ndarray]], sources: Optional[Sequence[str]]
                        ) -> tuple[np.ndarray, Confirmed]:
        """Second looks at split rows and confirmations of confident ones (rows not confirmed get lower scores in
        `combined`); returns the rows the second look decided, and the confirmations."""
        looked = np.zeros(len(combined), bool)
        if images is None or not (self.second_look.labels or self._confirmation.colours.labels):
            return looked, Confirmed(looked, looked)
        sources = sources or [""] * len(combined)
        self._remember_belts(images, sources, self._shows_background(head, BELT_SCORE))
        looked, doubted = self._look_again(combined, ranking, images, sources)
        doubted[unknown > LIKE_KNOWN_UP_TO] = -1  # a hand over the lane: unlike every product, no pick either
        checked = self._confirmation.check(ranking, combined, looked, images, sources, self._empty_belt,
                                           CONFIRM_LOOKS_PER_BATCH, doubted)
        combined[checked.demoted] *= min(UNCONFIRMED_SCALE, 0.9 * self.split_below)
        return looked, checked

    def label_similarity(self, features: torch.Tensor) -> np.ndarray:
        """(N, labels) each label's best cosine similarity to the frame (-1 for a label without prototypes)."""
        shifted = features.float() - self._mean
        units = shifted / shifted.norm(dim=1, keepdim=True).clamp_min(1e-12)
        per_prototype = units @ self._prototypes.T
        similarity = torch.full((len(units), len(self.labels)), -1.0)
        similarity.scatter_reduce_(1, self._owners.expand(len(units), -1), per_prototype, "amax", include_self=True)
        return similarity.numpy()

    def _combine(self, head: np.ndarray, belt_share: np.ndarray, similarity: np.ndarray) -> np.ndarray:
        trained = len(self.head_labels)
        if not self.gallery.entries:
            return head
        z = self.temperature * similarity
        z -= z.max(axis=1, keepdims=True)
        share = np.exp(z)
        share /= share.sum(axis=1, keepdims=True)
        trained_share = share[:, :trained].sum(axis=1, keepdims=True)
        combined = np.concatenate([head * trained_share, share[:, trained:]], axis=1)
        return self._belt_keeps_its_share(head, belt_share, combined)

    def _belt_keeps_its_share(self, head: np.ndarray, belt_share: np.ndarray, combined: np.ndarray) -> np.ndarray:
        """Where the head gives the background labels together at least BELT_KEEPS_FROM, they keep at least the
        head's probability: an enrolled product's likeness does not turn the belt (or a hand over it) into that
        product. The other labels shrink in proportion."""
        rows = belt_share >= BELT_KEEPS_FROM
        if not rows.any():
            return combined
        belt = combined[np.ix_(rows, self._background)]
        kept = np.maximum(belt, head[np.ix_(rows, self._background)])
        rest = np.clip(1.0 - belt.sum(axis=1, keepdims=True), 1e-12, None)
        scale = np.clip(1.0 - kept.sum(axis=1, keepdims=True), 0.0, None) / rest
        lifted = combined[rows] * scale
        lifted[:, self._background] = kept
        combined[rows] = lifted
        return combined

    def _remember_belts(self, images: Sequence[np.ndarray], sources: Sequence[str], empty: np.ndarray) -> None:
        """Keep each camera's empty belt (one frame in BELT_EVERY that the head takes for a background label with
        BELT_SCORE): in a second look its keypoints count for no product, however like a product's references the
        belt is, and the colours of a product are those of the pixels that differ from it."""
        for row in np.flatnonzero(empty):
            seen, belt = self._belts.get(sources[row], (BELT_EVERY, None))
            if seen >= BELT_EVERY:
                self._belts[sources[row]] = (1, EmptyBelt(keypoints_of(images[row]), shrunk(images[row])))
            else:
                self._belts[sources[row]] = (seen + 1, belt)

    def _look_again(self, combined: np.ndarray, ranking: np.ndarray, images: Sequence[np.ndarray],
                    sources: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Split rows (top-1 below `split_below`, the top SPLIT_CANDIDATES together at or above it, none a
        background label) whose picture the second look decides: the winner takes the candidates' shares, the other
        candidates follow it in `ranking` with none. Newest rows first, at most LOOKS_PER_BATCH looks; a verdict
        holds for the older rows of the same camera and candidates. Returns which rows it decided, and per row the
        label the look found too little of (-1: none): another product on that label's design."""
        verdicts: dict[tuple, Verdict] = {}
        looked, doubted = np.zeros(len(combined), bool), np.full(len(combined), -1)
        looks = 0
        for row in reversed(range(len(combined))):
            top = np.argsort(-combined[row])[:SPLIT_CANDIDATES]
            shares = combined[row, top]
            if not shares[0] < self.split_below <= shares.sum() or any(i in self._background for i in top):
                continue
            key = (sources[row], tuple(int(i) for i in top))
            verdict = verdicts.get(key)
            if verdict is None and looks < LOOKS_PER_BATCH:
                looks += 1
                verdict = self.second_look.look(images[row], [self.labels[i] for i in top], self._belt_of(sources[row]))
                if verdict.winner is not None or verdict.short_of is not None:
                    verdicts[key] = verdict
            verdict = verdict or Verdict()
            if verdict.short_of is not None:
                doubted[row] = top[verdict.short_of]
            if verdict.winner is not None:
                combined[row, top] = 0.0
                combined[row, top[verdict.winner]] = shares.sum()
                ranking[row, top] = 2.0 + shares
                ranking[row, top[verdict.winner]] = 4.0
                looked[row] = True
        return looked, doubted

    def _empty_belt(self, source: str) -> Optional[EmptyBelt]:
        return self._belts.get(source, (0, None))[1]

    def _belt_of(self, source: str) -> Optional[Keypoints]:
        belt = self._empty_belt(source)
        return None if belt is None else belt.keypoints

    def _shows_background(self, head: np.ndarray, score: float) -> np.ndarray:
        if not self._background:
            return np.zeros(len(head), bool)
        return np.isin(head.argmax(axis=1), self._background) & (head.max(axis=1) >= score)

    def _belt_share(self, head: np.ndarray) -> np.ndarray:
        return head[:, self._background].sum(axis=1) if self._background else np.zeros(len(head))

    def unknown_scores(self, nearest: np.ndarray) -> np.ndarray:
        """The share of known pictures more similar to their nearest prototype than `nearest` (0-1)."""
        if not len(self._quantiles):
            return np.zeros(len(nearest))
        below = np.interp(nearest, self._quantiles, CALIBRATION_QUANTILES, left=0.0, right=1.0)
        return np.clip(1.0 - below, 0.0, 1.0)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
