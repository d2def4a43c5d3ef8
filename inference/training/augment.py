"""Augmentations that fit checkout cameras: scale, position, rotation, lighting, blur and partial occlusion."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly each augmentation varies a training picture."""

    scale: tuple[float, float] = (0.8, 1.15)
    rotation_deg: float = 20.0
    brightness: float = 0.25
    contrast: float = 0.25
    color: float = 0.08
    blur_probability: float = 0.25
    occlusion_probability: float = 0.25
    occlusion_max_fraction: float = 0.25


def augment(image: np.ndarray, crop: int, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """A randomly varied `crop`×`crop` view of a square uint8 BGR image."""
    size = image.shape[0]
    scale = rng.uniform(*config.scale) * crop / size
    angle = rng.uniform(-config.rotation_deg, config.rotation_deg)
    shift = abs(size - crop / scale) / 2
    centre = (size / 2 + rng.uniform(-shift, shift) / 2, size / 2 + rng.uniform(-shift, shift) / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    matrix[:, 2] += (crop / 2 - centre[0], crop / 2 - centre[1])
    view = cv2.warpAffine(image, matrix, (crop, crop), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    view = _lighting(view, rng, config)
    if rng.random() < config.blur_probability:
        view = cv2.GaussianBlur(view, (0, 0), rng.uniform(0.4, 1.4))
    if rng.random() < config.occlusion_probability:
        _occlude(view, rng, config.occlusion_max_fraction)
    return view


def _lighting(view: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    gain = 1.0 + rng.uniform(-config.contrast, config.contrast)
    bias = 255.0 * rng.uniform(-config.brightness, config.brightness) * 0.5
    tint = 1.0 + rng.uniform(-config.color, config.color, 3)
    mean = view.mean()
    lit = (view.astype(np.float32) - mean) * gain + mean + bias
    return np.clip(lit * tint, 0, 255).astype(np.uint8)


def _occlude(view: np.ndarray, rng: np.random.Generator, max_fraction: float) -> None:
    """Cover a random rectangle (up to `max_fraction` of the area) with a flat colour, like a hand or a bag."""
    size = view.shape[0]
    area = rng.uniform(0.05, max_fraction) * size * size
    aspect = rng.uniform(0.4, 2.5)
    h = int(min(size, np.sqrt(area * aspect)))
    w = int(min(size, area / max(h, 1)))
    y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
    view[y:y + h, x:x + w] = rng.integers(0, 256, 3)
