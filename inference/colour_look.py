"""Confirming an enrolled label by the colours of the product in view.

The features of a small model take a bottle in other colours for an enrolled bottle of its shape (a green MILU
bottle with a purple band for the purple PIXPIX bottle with a teal band), and SIFT sees grey: it confirms a
purple CHOCO bar as an enrolled CHOCO bar in another purple. The colours of the product do tell them apart:
each enrolled label keeps a hue histogram of the saturated pixels of its pictures (the median over them, so
that their backgrounds, different in each picture, count little), and a frame shows the label's colours when
the hue histogram of its saturated pixels that differ from the camera's empty belt shares at least COLOUR_SHARE
with it (histogram intersection). Only labels enrolled from photos have one (a camera recording's frames share
its belt and hand); a grey product has none.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

HUE_BINS = 36
"""Bins of 5° of hue."""
MIN_SATURATION = 60
MIN_VALUE = 40
"""Pixels less saturated or darker than this (0-255) have no hue worth counting (belt, shadows, white, black)."""
SMOOTHING = 0.25
"""Each bin gives this share of its count to each neighbour: the light shifts a colour's hue by a few degrees."""
COLOUR_SIDE = 160
"""Pictures are compared shrunk so that their longer side is this many pixels."""
BELT_DIFFERENCE = 40
"""A pixel whose B, G and R differ from the empty belt's by this much together belongs to what lies on it."""
MIN_COLOURED = 0.02
"""A label's pictures, and a frame's product, need at least this share of the picture in saturated pixels: a grey
product is not confirmed by its colours."""
COLOUR_SHARE = 0.3
"""A frame confirms a label's colours when its product's hue histogram shares this much with the label's
(2026-12-08, the demo's two new-product sets, 50 pictures each, frames at rest: genuine enrolled products 0.45-0.96,
the never-enrolled purple CHOCO bar 0.19 of the enrolled CHOCO bar's purple; the green MILU bottle with a purple
band has 0.40 of the purple PIXPIX bottle's colours, too close to the genuine to be refused)."""


def shrunk(image: np.ndarray) -> np.ndarray:
    """A BGR picture shrunk to COLOUR_SIDE (its longer side)."""
    scale = COLOUR_SIDE / max(image.shape[:2])
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else image


def hue_histogram(image: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """(HUE_BINS,) smoothed counts of the saturated pixels' hues (in `mask` only, when given)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    coloured = (hsv[..., 1] >= MIN_SATURATION) & (hsv[..., 2] >= MIN_VALUE)
    if mask is not None:
        coloured &= mask
    counts = cv2.calcHist([hsv], [0], coloured.astype(np.uint8), [HUE_BINS], [0, 180]).ravel()
    return (1 - 2 * SMOOTHING) * counts + SMOOTHING * (np.roll(counts, 1) + np.roll(counts, -1))


def colour_signature(pictures: Sequence[np.ndarray]) -> np.ndarray:
    """A label's colours: the median of its pictures' normalized hue histograms, normalized; empty when most of its
    pictures have too few saturated pixels (a grey product)."""
    shares = []
    for picture in pictures:
        small = shrunk(picture)
        counts = hue_histogram(small)
        if counts.sum() >= MIN_COLOURED * small.shape[0] * small.shape[1]:
            shares.append(counts / counts.sum())
    if len(shares) * 2 <= len(pictures) or not shares:
        return np.zeros(0, np.float32)
    median = np.median(shares, axis=0)
    return (median / median.sum()).astype(np.float32)


class ColourLook:
    """The colour signatures of enrolled labels; `confirms` checks a frame's product against one."""

    def __init__(self, signatures: Mapping[str, np.ndarray]) -> None:
        self._signatures = {label: np.asarray(s, np.float32) for label, s in signatures.items()
                            if np.size(s) == HUE_BINS}

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels it can confirm."""
        return tuple(self._signatures)

    def can_confirm(self, label: str) -> bool:
        return label in self._signatures

    def share(self, image: np.ndarray, label: str, belt: np.ndarray) -> Optional[float]:
        """How much of the label's colours the frame's product shows (0-1; None without enough of a product)."""
        small = shrunk(image)
        if belt.shape != small.shape:
            return None
        on_belt = np.abs(small.astype(np.int16) - belt.astype(np.int16)).sum(axis=2) >= BELT_DIFFERENCE
        counts = hue_histogram(small, on_belt)
        if counts.sum() < MIN_COLOURED * small.shape[0] * small.shape[1]:
            return None
        return float(np.minimum(counts / counts.sum(), self._signatures[label]).sum())

    def confirms(self, image: np.ndarray, label: str, belt: Optional[np.ndarray]) -> Optional[bool]:
        """Whether the frame shows the label's colours; None when it cannot tell (no signature, no empty belt of
        this camera yet (`belt`: one of its frames shrunk), or too few coloured pixels differing from it)."""
        if not self.can_confirm(label) or belt is None:
            return None
        share = self.share(image, label, belt)
        return None if share is None else share >= COLOUR_SHARE
