"""The checkout-lane scene: products enter the view one after another, rest, and leave, with empty belt between."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from capture.catalog import PRODUCTS, Product
from capture.scene import Pose, SpriteCache, apply_lighting, draw_hand, make_background, paste, random_lighting

NOISE_POOL = 8


@dataclass(frozen=True)
class LaneTiming:
    """Seconds per phase of one product pass (rest and gap vary by ±30% per pass)."""

    enter_s: float = 0.8
    rest_s: float = 1.6
    leave_s: float = 0.8
    gap_s: float = 1.0


@dataclass(frozen=True)
class ProductPass:
    """One product crossing the lane: frame numbers of its phases, and how it looks."""

    index: int
    product: Product
    start: int
    rest_start: int
    rest_end: int
    end: int
    next_start: int
    pose: Pose
    hand: bool


class LaneScene:
    """Frame n of the lane is a pure function of (seed, n); `pass_at` tells what is on the lane (ground truth)."""

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, seed: int = 0,
                 timing: LaneTiming = LaneTiming(), empty: bool = False, products: Sequence[Product] = PRODUCTS) -> None:
        self.width, self.height, self.fps, self.seed, self.timing = width, height, fps, seed, timing
        self.empty = empty
        """An empty lane: the same passes, but only a hand sweeps through (a hard case for false events)."""
        self.products = tuple(products)
        """What passes, each once per round in a shuffled order (default: the catalog)."""
        rng = np.random.default_rng([seed, 0])
        lighting = random_lighting(rng)
        backgrounds = [make_background(width, height, np.random.default_rng([seed, 1]))] * NOISE_POOL
        self._backgrounds = [
            np.clip(apply_lighting(bg, lighting).astype(np.int16) + rng.normal(0, 2.5, bg.shape).astype(np.int16), 0, 255)
            .astype(np.uint8) for bg in backgrounds
        ]
        self._shade = lighting.gain
        self._sprites = SpriteCache()
        self._passes: list[ProductPass] = []
        self._scaled: tuple[int, np.ndarray] = (-1, np.zeros((1, 1, 4), np.uint8))

    def passes_until(self, frame: int) -> list[ProductPass]:
        """Every pass that starts at or before `frame`."""
        while not self._passes or self._passes[-1].next_start <= frame:
            self._passes.append(self._make_pass(len(self._passes)))
        return self._passes

    def pass_at(self, frame: int) -> Optional[ProductPass]:
        """The pass whose product is in view at `frame`, or None during the empty gap."""
        passes = self.passes_until(frame)
        position = bisect.bisect_right([p.start for p in passes], frame) - 1
        if position < 0:
            return None
        current = passes[position]
        return current if frame < current.end else None

    def render(self, frame: int) -> np.ndarray:
        """The picture at frame number `frame`."""
        image = self._backgrounds[frame % NOISE_POOL].copy()
        current = self.pass_at(frame)
        if current is None:
            return image
        cx, speed = self._position(current, frame)
        pose = Pose(cx, current.pose.cy, current.pose.height, current.pose.angle)
        if self.empty:
            draw_hand(image, np.random.default_rng([self.seed, 3, current.index]), near=pose)
            return image
        paste(image, self._sprite(current), pose, shadow=0.3, motion_px=int(abs(speed) * 0.5), shade=self._shade)
        if current.hand and not current.rest_start <= frame < current.rest_end:
            draw_hand(image, np.random.default_rng([self.seed, 3, current.index]), near=pose)
        return image

    def _position(self, current: ProductPass, frame: int) -> tuple[float, float]:
        """Horizontal centre (fraction of width) and speed (pixels per frame) of the product."""
        rest_x = current.pose.cx
        start_x, end_x = -0.25, 1.25
        if frame < current.rest_start:
            t = (frame - current.start) / max(1, current.rest_start - current.start)
            eased = 1 - (1 - t) ** 2
            return start_x + (rest_x - start_x) * eased, 2 * (1 - t) * (rest_x - start_x) * self.width / (current.rest_start - current.start)
        if frame < current.rest_end:
            return rest_x, 0.0
        t = (frame - current.rest_end) / max(1, current.end - current.rest_end)
        return rest_x + (end_x - rest_x) * t * t, 2 * t * (end_x - rest_x) * self.width / (current.end - current.rest_end)

    def _sprite(self, current: ProductPass) -> np.ndarray:
        """The product's sprite shrunk once per pass to its size in the picture."""
        if self._scaled[0] != current.index:
            sprite = self._sprites.get(current.product)
            scale = current.pose.height * self.height / sprite.shape[0]
            self._scaled = (current.index, cv2.resize(sprite, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
        return self._scaled[1]

    def _make_pass(self, index: int) -> ProductPass:
        rng = np.random.default_rng([self.seed, 2, index])
        count = len(self.products)
        order = np.random.default_rng([self.seed, 4, index // count]).permutation(count)
        product = self.products[order[index % count]]
        start = self._passes[-1].next_start if self._passes else int(self.timing.gap_s * self.fps)
        frames = lambda seconds, spread=0.0: max(1, int(round(seconds * self.fps * rng.uniform(1 - spread, 1 + spread))))  # noqa: E731
        rest_start = start + frames(self.timing.enter_s)
        rest_end = rest_start + frames(self.timing.rest_s, 0.3)
        end = rest_end + frames(self.timing.leave_s)
        height = rng.uniform(0.45, 0.7) * (0.55 if product.aspect > 1.5 else 1.0)
        pose = Pose(rng.uniform(0.42, 0.58), rng.uniform(0.4, 0.6), height, rng.uniform(-25, 25))
        return ProductPass(index, product, start, rest_start, rest_end, end, end + frames(self.timing.gap_s, 0.3),
                           pose, hand=bool(rng.random() < 0.5))


class LaneSource:
    """The lane scene as a camera source (`synthetic:lane`)."""

    is_live = False

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, seed: int = 0) -> None:
        self.name = f"synthetic:lane(seed={seed})"
        self._scene = LaneScene(width, height, fps, seed)
        self._frame = 0

    def open(self) -> None:
        """Nothing to open."""

    def fps(self) -> Optional[float]:
        """The scene's frame rate."""
        return self._scene.fps

    def read(self) -> Optional[np.ndarray]:
        """The next picture of the lane."""
        image = self._scene.render(self._frame)
        self._frame += 1
        return image

    def close(self) -> None:
        """Nothing to release."""
