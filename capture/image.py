"""Make any image a camera delivers into the 3-channel BGR uint8 frames the pipeline expects."""

from __future__ import annotations

import cv2
import numpy as np

MIN_SIDE = 8
MAX_SIDE = 16384
MAX_ASPECT = 10.0
"""Wider than 10:1 is no camera picture; preprocessing such a strip (shorter side to 256) would allocate gigabytes."""


class BadFrame(ValueError):
    """An image that cannot be turned into a BGR frame."""


def as_bgr(image: object) -> np.ndarray:
    """Return a contiguous HxWx3 uint8 BGR image, converting gray and BGRA; raise BadFrame otherwise."""
    if not isinstance(image, np.ndarray):
        raise BadFrame(f"expected an image array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise BadFrame(f"expected 8-bit pixels, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise BadFrame(f"unsupported image shape {image.shape}")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE or max(height, width) > MAX_SIDE:
        raise BadFrame(f"image size {width}x{height} outside {MIN_SIDE}..{MAX_SIDE} pixels")
    if max(height, width) > MAX_ASPECT * min(height, width):
        raise BadFrame(f"image size {width}x{height} is narrower than 1:{MAX_ASPECT:.0f}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)
