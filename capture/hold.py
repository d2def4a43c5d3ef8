"""A product the demo model was never trained on, held in front of the camera and turned (`synthetic:hold`):
what `streamrec enroll --source` records. The hand brings it in during the first half second (frames without a
product), then turns and tilts it slowly; the camera's seed picks the product (capture/new_products.py)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from capture.new_products import new_products
from capture.scene import (
    Pose,
    SpriteCache,
    apply_lighting,
    draw_hand,
    make_background,
    paste,
    random_lighting,
)

ENTER_S = 0.5
HOLD_PRODUCTS_SEED = 4242
"""The products a `synthetic:hold` camera shows come from this generator seed (camera seed n: product n)."""


def held_product(seed: int):
    """The product a `synthetic:hold` camera with this seed shows."""
    return new_products(seed + 1, HOLD_PRODUCTS_SEED)[seed]


class HoldSource:
    """Frame n is a pure function of (seed, n)."""

    is_live = False

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, seed: int = 0) -> None:
        self.product = held_product(seed)
        self.name = f"synthetic:hold({self.product.label})"
        self.width, self.height, self._fps, self._seed = width, height, fps, seed
        rng = np.random.default_rng([seed, 31])
        self._background = apply_lighting(make_background(width, height, rng), random_lighting(rng))
        self._sprites = SpriteCache()
        self._frame = 0

    def open(self) -> None:
        """Nothing to open."""

    def fps(self) -> Optional[float]:
        return self._fps

    def read(self) -> Optional[np.ndarray]:
        """The next picture."""
        image = self.render(self._frame)
        self._frame += 1
        return image

    def render(self, frame: int) -> np.ndarray:
        t = frame / self._fps
        image = self._background.copy()
        noise = np.random.default_rng([self._seed, 32, frame]).normal(0, 2.0, image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
        entering = min(1.0, t / ENTER_S)
        cx = -0.3 + 0.8 * entering + 0.06 * np.sin(t * 1.3)
        pose = Pose(cx, 0.5 + 0.05 * np.sin(t * 0.9), 0.55 + 0.08 * np.sin(t * 0.7), 35.0 * np.sin(t * 0.8))
        if cx > -0.2:
            paste(image, self._sprites.get(self.product), pose, shadow=0.2)
        draw_hand(image, np.random.default_rng([self._seed, 33]), near=pose)
        return image

    def close(self) -> None:
        """Nothing to release."""
