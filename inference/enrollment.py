"""From pictures of one product to its gallery entry: unusable views skipped and counted, the rest turned into
prototypes in the bundle's feature space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from inference.colour_look import colour_signature
from inference.feature_stats import FeatureStats
from inference.gallery import RECORDED_SOURCES, GalleryEntry, new_entry, normalized
from inference.preprocess import BatchPreprocessor
from inference.second_look import reference_descriptors

BATCH = 32
BLUR_SHARE = 0.35
"""A view sharper than this share of the median sharpness of the views offered is kept."""
DUPLICATE_SIMILARITY = 0.985
"""A view this similar (cosine, centred features) to a view already kept adds nothing."""
IDENTICAL_SIMILARITY = 0.9995
"""Views this similar are the same picture: they never make up for missing views."""
MIN_VIEWS = 5
MAX_CAMERA_VIEWS = 300
"""At most this many frames of a camera session are looked at (evenly spread), so a long session stays quick."""
PROTOTYPES_PER_LABEL = 8


class EnrollmentError(ValueError):
    """Too few usable views, or a model that cannot enroll; the message says what to do."""


@dataclass
class ViewTally:
    """What happened to the views offered."""

    offered: int = 0
    kept: int = 0
    blurred: int = 0
    duplicate: int = 0
    without_product: int = 0
    unreadable: int = 0
    alike: int = 0
    """Kept views that are near-duplicates, kept because there were fewer than MIN_VIEWS distinct ones."""

    def line(self) -> str:
        alike = (f", {self.alike} of them nearly alike: turn the product to show more of its sides"
                 if self.alike else "")
        return (f"{self.kept} of {self.offered} views kept{alike} (skipped: {self.blurred} blurred, "
                f"{self.duplicate} duplicate, {self.without_product} without a product, {self.unreadable} unreadable)")


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the picture's grey centre, shrunk to 160 px: low for blurred pictures."""
    height, width = image.shape[:2]
    scale = 160.0 / max(1, min(height, width))
    grey = cv2.cvtColor(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def most_distinct(candidates: list[np.ndarray], chosen: list[np.ndarray], wanted: int) -> list[np.ndarray]:
    """Up to `wanted` of the unit `candidates`, each the least like those already chosen (a slowly turned product
    still gives its MIN_VIEWS views); never a picture identical to one chosen."""
    pool, picked = list(candidates), []
    while pool and chosen and len(picked) < wanted:
        similarity = (np.stack(pool) @ np.stack(chosen + picked).T).max(axis=1)
        best = int(np.argmin(similarity))
        if similarity[best] >= IDENTICAL_SIMILARITY:
            break
        picked.append(pool.pop(best))
    return picked


def sharp_references(views: Sequence[np.ndarray]) -> np.ndarray:
    """The second look's references (see second_look) from the views that are not blurred."""
    if not len(views):
        return reference_descriptors([])
    sharp = np.array([sharpness(view) for view in views])
    return reference_descriptors([v for v, s in zip(views, sharp) if s >= BLUR_SHARE * float(np.median(sharp))])


class Enroller:
    """Turns views of one product into a gallery entry with a bundle's classifier and feature statistics.

    `empty_labels`: trained labels meaning "no product" (an empty-lane class); a view the head gives one of them
    as its best guess (at least `empty_score`) is skipped."""

    def __init__(self, classifier, stats: Optional[FeatureStats], empty_labels: Sequence[str] = (),
                 empty_score: float = 0.5, prototypes: int = PROTOTYPES_PER_LABEL) -> None:
        if stats is None:
            raise EnrollmentError("this bundle has no feature statistics (it was trained before streamrec could "
                                  "enroll products): train it again with `streamrec finetune`, then enroll")
        if getattr(classifier, "feature_dim", None) != stats.feature_dim:
            raise EnrollmentError("this model gives no features of the width its statistics have; "
                                  "train the bundle again with `streamrec finetune`")
        self.classifier, self.stats, self.prototypes = classifier, stats, prototypes
        self._empty = [i for i, label in enumerate(classifier.labels) if label in set(empty_labels)]
        self._empty_score = empty_score
        self._preprocess = BatchPreprocessor(classifier.input_spec, BATCH)

    @property
    def empty_labels(self) -> tuple[str, ...]:
        """The trained labels that mean "no product"."""
        return tuple(self.classifier.labels[i] for i in self._empty)

    def predict(self, images: Sequence[np.ndarray]):
        """(logits, features) of at most BATCH BGR pictures, preprocessed as the pipeline does."""
        return self.classifier.predict_with_features(self._preprocess(list(images[:BATCH])))

    def unit_features(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(centred unit features (N, D), head probabilities (N, C)) of BGR pictures."""
        import torch

        units, probabilities = [], []
        for start in range(0, len(images), BATCH):
            logits, features = self.predict(images[start:start + BATCH])
            units.append(normalized(features.float().numpy(), self.stats.mean))
            probabilities.append(torch.softmax(logits.float(), dim=1).numpy())
        if not units:
            return np.zeros((0, self.stats.feature_dim), np.float32), np.zeros((0, len(self.classifier.labels)))
        return np.concatenate(units), np.concatenate(probabilities)

    def keep(self, images: Sequence[np.ndarray], tally: ViewTally) -> np.ndarray:
        """The centred unit features of the usable views (blurred, empty and duplicate ones skipped, counted)."""
        tally.offered += len(images)
        if not images:
            return np.zeros((0, self.stats.feature_dim), np.float32)
        sharp = np.array([sharpness(image) for image in images])
        usable = sharp >= BLUR_SHARE * float(np.median(sharp))
        tally.blurred += int((~usable).sum())
        units, probabilities = self.unit_features([image for image, ok in zip(images, usable) if ok])
        kept: list[np.ndarray] = []
        alike: list[np.ndarray] = []
        for unit, probability in zip(units, probabilities):
            if self._empty and int(np.argmax(probability)) in self._empty and probability.max() >= self._empty_score:
                tally.without_product += 1
            elif kept and float(np.max(np.stack(kept) @ unit)) >= DUPLICATE_SIMILARITY:
                alike.append(unit)
            else:
                kept.append(unit)
        filled = most_distinct(alike, kept, MIN_VIEWS - len(kept))
        tally.duplicate += len(alike) - len(filled)
        tally.alike += len(filled)
        kept += filled
        tally.kept += len(kept)
        return np.stack(kept) if kept else np.zeros((0, self.stats.feature_dim), np.float32)

    def entry(self, label: str, kept: np.ndarray, source: str, tally: ViewTally,
              views: Sequence[np.ndarray] = ()) -> GalleryEntry:
        """The gallery entry of `label` from its kept views (EnrollmentError when there are too few), with the
        second look's references from the sharp ones of the `views` offered, and, for photos, their colours."""
        if len(kept) < MIN_VIEWS:
            raise EnrollmentError(f"only {tally.line()}; {label!r} needs at least {MIN_VIEWS} usable views: "
                                  "give more (or sharper) pictures of the product, each from another side")
        colours = None if source.startswith(RECORDED_SOURCES) else colour_signature(views)
        return new_entry(label, kept, self.prototypes, source, sharp_references(views), colours)
