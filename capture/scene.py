"""Compose checkout-camera pictures: belt backgrounds, posed products with shadows, hands, lighting, blur, noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from capture.catalog import PRODUCTS, Product, draw_product

SKIN_TONES: tuple[tuple[int, int, int], ...] = ((140, 170, 220), (110, 140, 190), (70, 100, 150), (50, 70, 110))


@dataclass(frozen=True)
class Pose:
    """Where a product lies in the picture: centre (fractions of width/height), height (fraction of picture height), angle."""

    cx: float
    cy: float
    height: float
    angle: float


@dataclass(frozen=True)
class Lighting:
    """Global light: gain and offset, colour temperature, and a soft spot light position."""

    gain: float
    bias: float
    warmth: float
    spot_x: float
    spot_y: float


def random_lighting(rng: np.random.Generator) -> Lighting:
    """Lighting as checkout areas vary: dim to bright, warm to cold, off-centre lamps."""
    return Lighting(rng.uniform(0.65, 1.3), rng.uniform(-25, 25), rng.uniform(-0.15, 0.15), rng.uniform(0, 1), rng.uniform(0, 1))


def make_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A conveyor belt or counter: a base colour, lengthwise ribs, a scanner window, and texture."""
    base = np.array(rng.choice([(45, 45, 45), (30, 30, 30), (70, 70, 70), (40, 60, 40), (90, 110, 130), (160, 160, 160)]))
    base = np.clip(base + rng.integers(-15, 16, 3), 0, 255)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = base
    spacing = int(rng.integers(6, 30))
    rib = np.clip(base + rng.integers(-25, 26), 0, 255)
    for y in range(int(rng.integers(0, spacing)), height, spacing):
        cv2.line(image, (0, y), (width - 1, y), tuple(int(c) for c in rib), max(1, spacing // 6))
    if rng.random() < 0.5:
        x0 = int(rng.uniform(0.0, 0.7) * width)
        cv2.rectangle(image, (x0, 0), (x0 + int(width * rng.uniform(0.1, 0.3)), height - 1),
                      tuple(int(c) for c in np.clip(base * 0.6 + 40, 0, 255)), -1)
    texture = rng.normal(0, rng.uniform(2, 8), (height // 4 + 1, width // 4 + 1, 1)).astype(np.float32)
    texture = cv2.resize(texture, (width, height))[:, :, None]
    return np.clip(image + texture, 0, 255).astype(np.uint8)


class SpriteCache:
    """Draws each product once and keeps the sprite."""

    def __init__(self) -> None:
        self._sprites: dict[str, np.ndarray] = {}

    def get(self, product: Product) -> np.ndarray:
        if product.label not in self._sprites:
            self._sprites[product.label] = draw_product(product)
        return self._sprites[product.label]


def paste(frame: np.ndarray, sprite: np.ndarray, pose: Pose, shadow: float = 0.35, motion_px: int = 0,
          shade: float = 1.0) -> None:
    """Blend a BGRA sprite into `frame` at `pose` (working only inside its bounding box), with a soft drop
    shadow, optional horizontal motion blur, and a brightness factor for the light where it lies."""
    height, width = frame.shape[:2]
    scale = pose.height * height / sprite.shape[0]
    if scale < 0.8:  # shrink with an area filter first: warping alone would alias the print
        sprite = cv2.resize(sprite, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        scale = pose.height * height / sprite.shape[0]
    matrix = cv2.getRotationMatrix2D((sprite.shape[1] / 2, sprite.shape[0] / 2), pose.angle, scale)
    matrix[:, 2] += (pose.cx * width - sprite.shape[1] / 2, pose.cy * height - sprite.shape[0] / 2)
    corners = np.array([[0, 0, 1], [sprite.shape[1], 0, 1], [0, sprite.shape[0], 1], [sprite.shape[1], sprite.shape[0], 1]])
    placed = corners @ matrix.T
    margin = int(0.05 * height) + motion_px
    x0, y0 = np.floor(placed.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(placed.max(axis=0)).astype(int) + margin
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return
    matrix[:, 2] -= (x0, y0)
    warped = cv2.warpAffine(sprite, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    if motion_px > 1:
        warped = cv2.filter2D(warped, -1, np.full((1, motion_px), 1.0 / motion_px, np.float32))
    alpha = warped[:, :, 3:4].astype(np.float32) / 255.0
    region = frame[y0:y1, x0:x1].astype(np.float32)
    if shadow > 0:
        offset = max(2, int(0.02 * height))
        soft = cv2.GaussianBlur(np.roll(alpha[:, :, 0], (offset, offset), axis=(0, 1)), (0, 0), offset)[:, :, None]
        region *= 1.0 - shadow * soft
    region = region * (1.0 - alpha) + warped[:, :, :3].astype(np.float32) * (alpha * shade)
    frame[y0:y1, x0:x1] = np.clip(region, 0, 255).astype(np.uint8)


def draw_hand(frame: np.ndarray, rng: np.random.Generator, near: Optional[Pose] = None) -> None:
    """A hand reaching in from outside the picture: to the edge of a product (holding it), or anywhere when empty."""
    height, width = frame.shape[:2]
    tone = tuple(int(c) for c in np.clip(np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))]) + rng.integers(-15, 16, 3), 0, 255))
    reach = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(reach), np.sin(reach)])
    if near is not None:
        palm = max(4, int(near.height * height * rng.uniform(0.14, 0.2)))
        centre = np.array([near.cx * width, near.cy * height]) - direction * near.height * height * rng.uniform(0.45, 0.6)
    else:
        palm = max(4, int(height * rng.uniform(0.06, 0.1)))
        centre = np.array([rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height])
    wrist_end = centre - direction * 2 * max(width, height)
    cv2.line(frame, _point(centre), _point(wrist_end), tone, int(palm * 1.5))
    angle = float(np.degrees(reach))
    cv2.ellipse(frame, _point(centre), (int(palm * 1.1), palm), angle, 0, 360, tone, -1)
    side = np.array([-direction[1], direction[0]])
    for finger in range(4):
        base = centre + direction * palm * 0.8 + side * palm * (finger - 1.5) * 0.5
        tip = base + direction * palm * rng.uniform(0.5, 0.9)
        cv2.line(frame, _point(base), _point(tip), tone, max(2, int(palm * 0.35)))


def _point(xy: np.ndarray) -> tuple[int, int]:
    return int(xy[0]), int(xy[1])


def apply_lighting(frame: np.ndarray, light: Lighting) -> np.ndarray:
    """Gain, offset, colour temperature and a soft spot light."""
    height, width = frame.shape[:2]
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    spot = 1.0 + 0.25 * np.exp(-((xs - light.spot_x) ** 2 + (ys - light.spot_y) ** 2) / 0.15) - 0.1
    tint = np.array([1.0 - light.warmth, 1.0, 1.0 + light.warmth], np.float32)
    lit = frame.astype(np.float32) * (light.gain * spot)[:, :, None] * tint + light.bias
    return np.clip(lit, 0, 255).astype(np.uint8)


def blur(frame: np.ndarray, sigma: float, motion_px: int = 0) -> np.ndarray:
    """Defocus (Gaussian) and horizontal motion blur."""
    if motion_px > 1:
        kernel = np.full((1, motion_px), 1.0 / motion_px, np.float32)
        frame = cv2.filter2D(frame, -1, kernel)
    if sigma > 0.3:
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    return frame


def add_noise(frame: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Add a precomputed sensor-noise field (int16, same shape)."""
    return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def random_pose(rng: np.random.Generator, product: Product) -> Pose:
    """A pose for a product resting in view: off-centre, of various sizes, tilted, sometimes lying on its side."""
    angle = rng.uniform(-35, 35) + (90 if product.aspect < 1 and rng.random() < 0.15 else 0)
    height = rng.uniform(0.42, 0.78) * (0.55 if product.aspect > 1.5 else 1.0)
    return Pose(rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), height, angle)


def render_sample(product: Optional[Product], rng: np.random.Generator, size: int, sprites: SpriteCache) -> np.ndarray:
    """One training picture of `product` (None: the empty lane), square, as the camera's central view shows it."""
    frame = make_background(size, size, rng)
    pose = None
    if product is not None:
        pose = random_pose(rng, product)
        if rng.random() < 0.15:  # entering or leaving: partly outside the view
            pose = Pose(rng.choice([rng.uniform(0.12, 0.25), rng.uniform(0.75, 0.88)]), pose.cy, pose.height, pose.angle)
        paste(frame, sprites.get(product), pose, shadow=rng.uniform(0.1, 0.45))
    if product is not None:
        if rng.random() < 0.35:
            draw_hand(frame, rng, near=pose)
    else:
        draw_empty_belt_hand(frame, rng)
    frame = apply_lighting(frame, random_lighting(rng))
    frame = blur(frame, rng.uniform(0, 1.6) * size / 224, int(rng.integers(0, 6) * size / 224) if rng.random() < 0.3 else 0)
    noise = rng.normal(0, rng.uniform(1, 6), frame.shape).astype(np.int16)
    return add_noise(frame, noise)


def draw_empty_belt_hand(frame: np.ndarray, rng: np.random.Generator) -> None:
    """The empty belt's hands: a small one reaching in (25%), or one sized like a hand holding a product, reaching for
    a spot anywhere, often only partly in view (35%): an arm sweeping over the belt must not look like a product."""
    chance = rng.random()
    if chance < 0.25:
        draw_hand(frame, rng)
    elif chance < 0.6:
        draw_hand(frame, rng, near=Pose(rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.42, 0.78), 0.0))


def all_products() -> tuple[Product, ...]:
    """The catalog's products, in label order."""
    return PRODUCTS
