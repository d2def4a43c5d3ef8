"""What a bundle knows about its own features: their mean over the training pictures, prototypes of every trained
label, and how similar known pictures are to their nearest prototype (the calibration of `unknown_score`).

Computed once when the bundle is trained (one pass over the training and validation pictures) and stored in it,
so that enrolling a product and flagging unknown ones need nothing but the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from inference.gallery import normalized, prototypes_of
from inference.second_look import OLDER_REFERENCE_WIDTH, REFERENCE_WIDTH, reference_descriptors

PROTOTYPES_PER_LABEL = 8
CALIBRATION_QUANTILES = tuple(round(q, 3) for q in np.linspace(0.0, 1.0, 41))

FeatureFn = Callable[[np.ndarray], np.ndarray]
"""images (N, H, W, 3) BGR → features (N, D)."""


@dataclass(frozen=True)
class FeatureStats:
    """The trained labels' side of the open catalog."""

    mean: np.ndarray
    """(D,) the mean feature of the training pictures: features are compared after subtracting it."""
    prototypes: np.ndarray
    """(P, D) unit vectors."""
    owners: np.ndarray
    """(P,) the trained label index of each prototype."""
    known_similarity: tuple[float, ...] = ()
    """Quantiles (CALIBRATION_QUANTILES) of known validation pictures' similarity to their nearest prototype."""
    extra: dict[str, Any] = field(default_factory=dict)
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, REFERENCE_WIDTH), np.uint8))
    """(K, 133) uint8 rows: SIFT descriptors of a few training pictures per label, each with its view and position (the
    second look's references; none in bundles made before 2026-12-06)."""
    keypoint_owners: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    """(K,) the trained label index of each descriptor."""
    outdated_keypoints: int = 0
    """References the bundle holds in the format before 2026-12-07 (without positions): not used."""

    def keypoints_by_label(self, labels: Sequence[str]) -> dict[str, np.ndarray]:
        """The second look's references of the trained labels that have some."""
        return {label: self.keypoints[self.keypoint_owners == i] for i, label in enumerate(labels)
                if np.any(self.keypoint_owners == i)}

    def with_keypoints(self, per_label: Sequence[np.ndarray]) -> "FeatureStats":
        """These stats with the second look's references: one array per trained label (reference_descriptors)."""
        rows = [np.asarray(r, np.uint8).reshape(-1, REFERENCE_WIDTH) for r in per_label]
        owners = [np.full(len(r), i, np.int64) for i, r in enumerate(rows)]
        return replace(self, keypoints=np.concatenate(rows) if rows else self.keypoints,
                       keypoint_owners=np.concatenate(owners) if owners else self.keypoint_owners, outdated_keypoints=0)

    @property
    def feature_dim(self) -> int:
        return int(self.mean.shape[0])

    def to_payload(self) -> dict[str, Any]:
        """Plain tensors and lists, as a bundle stores them (torch.load's weights_only accepts them)."""
        return {"mean": torch.from_numpy(self.mean.astype(np.float32)),
                "prototypes": torch.from_numpy(self.prototypes.astype(np.float32)),
                "owners": torch.from_numpy(self.owners.astype(np.int64)),
                "known_similarity": list(self.known_similarity), "extra": dict(self.extra),
                "keypoints": torch.from_numpy(self.keypoints.astype(np.uint8)),
                "keypoint_owners": torch.from_numpy(self.keypoint_owners.astype(np.int64))}

    @classmethod
    def from_payload(cls, payload: Any, labels: int) -> Optional["FeatureStats"]:
        """The stats in a bundle, or None when it has none (trained before they existed) or they do not fit."""
        if not isinstance(payload, dict):
            return None
        try:
            mean = payload["mean"].numpy().astype(np.float32)
            prototypes = payload["prototypes"].numpy().astype(np.float32)
            owners = payload["owners"].numpy().astype(np.int64)
        except (KeyError, AttributeError):
            return None
        if prototypes.ndim != 2 or prototypes.shape[1] != mean.shape[0] or len(owners) != len(prototypes):
            return None
        if len(owners) and (owners.min() < 0 or owners.max() >= labels):
            return None
        stats = cls(mean, prototypes, owners, tuple(float(q) for q in payload.get("known_similarity") or ()),
                    dict(payload.get("extra") or {}))
        return _with_stored_keypoints(stats, payload, labels)


def _with_stored_keypoints(stats: FeatureStats, payload: dict, labels: int) -> FeatureStats:
    """`stats` with the payload's second-look references when they are there and fit (else without them)."""
    try:
        rows = payload["keypoints"].numpy().astype(np.uint8)
        owners = payload["keypoint_owners"].numpy().astype(np.int64)
    except (KeyError, AttributeError):
        return stats
    if rows.ndim == 2 and rows.shape[1] == OLDER_REFERENCE_WIDTH:
        return replace(stats, outdated_keypoints=len(rows))
    if rows.ndim != 2 or rows.shape[1] != REFERENCE_WIDTH or len(owners) != len(rows):
        return stats
    if len(owners) and (owners.min() < 0 or owners.max() >= labels):
        return stats
    return replace(stats, keypoints=rows, keypoint_owners=owners)


def label_keypoints(images: np.ndarray, labels: np.ndarray, count: int) -> list[np.ndarray]:
    """The second look's references of each of `count` labels, from its pictures (see second_look)."""
    return [reference_descriptors(images[np.asarray(labels) == label]) for label in range(count)]


def compute_feature_stats(features_of: FeatureFn, train_images: np.ndarray, train_labels: np.ndarray,
                          val_images: np.ndarray, val_labels: np.ndarray, labels: int,
                          per_label: int = PROTOTYPES_PER_LABEL) -> FeatureStats:
    """Mean, per-label prototypes from the training pictures, and the known-similarity quantiles from the
    validation pictures (the training ones when there are none)."""
    train = features_of(train_images)
    mean = train.mean(axis=0).astype(np.float32)
    units = normalized(train, mean)
    rows, owners = [], []
    for label in range(labels):
        mine = units[np.asarray(train_labels) == label]
        if len(mine):
            rows.append(prototypes_of(mine, per_label, seed=label))
            owners += [label] * len(rows[-1])
    prototypes = np.concatenate(rows) if rows else np.zeros((0, len(mean)), np.float32)
    stats = FeatureStats(mean, prototypes, np.asarray(owners, np.int64))
    check = features_of(val_images) if len(val_images) else train
    similarity = nearest_similarity(normalized(check, mean), prototypes)
    calibrated = FeatureStats(mean, prototypes, stats.owners, quantiles(similarity))
    return calibrated.with_keypoints(label_keypoints(train_images, train_labels, labels))


def nearest_similarity(units: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of each unit vector to its nearest prototype (-1 when there are none)."""
    if not len(prototypes) or not len(units):
        return np.full(len(units), -1.0, np.float32)
    return np.max(units @ prototypes.T, axis=1)


def quantiles(similarity: np.ndarray) -> tuple[float, ...]:
    """The calibration table of a set of similarities."""
    if not len(similarity):
        return ()
    return tuple(round(float(v), 5) for v in np.quantile(similarity, CALIBRATION_QUANTILES))


def batched_features(classifier, preprocess, batch: int = 64) -> FeatureFn:
    """A FeatureFn running `classifier.predict_with_features` on `preprocess`ed batches."""
    def features_of(images: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch):
            _logits, features = classifier.predict_with_features(preprocess(list(images[start:start + batch])))
            if features is None:
                raise ValueError("this model gives no features")
            out.append(features.float().numpy().copy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
    return features_of
