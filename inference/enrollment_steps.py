"""The steps every way of enrolling shares (`streamrec enroll`, the web page's "Add product"): the bundle's current
gallery, a checked product name, and the preview of how a just-enrolled product is recognized."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from inference.bundle import Bundle
from inference.enrollment import Enroller, EnrollmentError
from inference.gallery import Gallery, GalleryEntry, load_gallery
from inference.open_catalog import OpenCatalog

LOOK_ALIKE_SCORE = 0.9
"""A new product whose views' mean similarity to another product has an unknown score below this is, to the
model, that product: its views are as close to it as most known pictures are to their own product (measured
2026-12-05: look-alikes of trained products 0.45-0.86, every other product of three sets at 0.95 or more)."""


def current_gallery(bundle: Bundle, path: Path) -> Gallery:
    """The bundle's gallery, or an empty one when it has none yet (GalleryError when it is damaged)."""
    if path.exists():
        return load_gallery(path, bundle.model_id)
    dim = bundle.features.feature_dim if bundle.features is not None else 0
    return Gallery(bundle.model_id, dim)


def checked_label(label: Optional[str], bundle: Bundle, bundle_name: str, how_to_name: str = "--label NAME") -> str:
    """The product name, stripped (EnrollmentError when empty, saying `how_to_name`, or a trained label)."""
    label = (label or "").strip()
    if not label:
        raise EnrollmentError(f"name the product: {how_to_name}")
    if label in bundle.labels:
        raise EnrollmentError(f"{label!r} is a trained label of {bundle_name}; enroll new products under "
                              "names of their own")
    return label


@dataclass(frozen=True)
class EnrollPreview:
    """How a newly enrolled product's own views are recognized, and the known product it looks most like."""

    label: str
    hits: int
    views: int
    closest: Optional[str] = None
    similarity: float = 0.0
    closest_score: float = 1.0
    """The unknown score of `similarity`: low when the views are as close to `closest` as its own pictures."""
    closest_is_empty: bool = False
    """`closest` is a label meaning "no product" (the empty lane)."""

    def line(self) -> str:
        text = f"preview: {self.hits} of {self.views} of its views recognized as {self.label!r}"
        if self.closest is not None:
            text += f"; most like {self.closest!r} (similarity {self.similarity:.2f})"
        return text

    @property
    def look_alike(self) -> Optional[str]:
        """The known product the model can hardly tell this one from, if any."""
        return self.closest if self.closest is not None and self.closest_score < LOOK_ALIKE_SCORE else None

    def warning(self) -> Optional[str]:
        """What the operator should know when the product is a look-alike (None otherwise)."""
        if self.look_alike is None:
            return None
        if self.closest_is_empty:
            return (f"warning: the model can hardly tell {self.label!r} from {self.look_alike!r} (no product): on the "
                    f"lane it may pass unregistered. Pictures closer up, filling more of the frame, may help")
        return (f"warning: the model can hardly tell {self.label!r} from {self.look_alike!r} (its views are as close "
                f"to {self.look_alike!r} as known products' own pictures are to them): on the lane, shoppers will "
                f"often be asked to pick between the two, for both products. Pictures closer up that show what "
                f"tells them apart may help")


def preview_of(bundle: Bundle, gallery: Gallery, enroller: Enroller, views: Sequence[np.ndarray],
               label: str) -> Optional[EnrollPreview]:
    """The preview of `label` just enrolled into `gallery`, from up to 32 of its views (None without views)."""
    if not views or bundle.features is None:
        return None
    catalog = OpenCatalog(bundle.labels, bundle.features, gallery)
    sample = list(views[:: max(1, len(views) // 40)])
    logits, features = enroller.predict(sample)
    found = catalog.recognize(logits, features, 2)
    hits = sum(1 for r in found if r.ranked[0].label == label)
    similarity = catalog.label_similarity(features)
    others = [i for i, name in enumerate(catalog.labels) if name != label]
    if not others:
        return EnrollPreview(label, hits, len(found))
    closest = others[int(np.argmax(similarity[:, others].mean(axis=0)))]
    mean = float(similarity[:, closest].mean())
    score = float(catalog.unknown_scores(np.array([mean]))[0]) if bundle.features.known_similarity else 1.0
    return EnrollPreview(label, hits, len(found), catalog.labels[closest], mean, score,
                         catalog.labels[closest] in enroller.empty_labels)


def with_look_alike(entry: GalleryEntry, preview: Optional[EnrollPreview]) -> GalleryEntry:
    """The entry remembering the known product its preview found it a look-alike of, for `model info`."""
    return replace(entry, look_alike=preview.look_alike or "") if preview is not None else entry
