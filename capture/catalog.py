"""The demo product catalog: products a kiosk sells, drawn with OpenCV as BGRA sprites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

CATALOG_VERSION = "catalog-v2"
"""Bump when any drawing changes: cached demo models are keyed by it.
v2: the empty lane's pictures also show shoppers' hands as large as those holding products."""
EMPTY_LABEL = "empty"
SPRITE_HEIGHT = 300

Color = tuple[int, int, int]


@dataclass(frozen=True)
class Product:
    """One product: its label, packaging shape, brand colours and printed name."""

    label: str
    shape: str
    body: Color
    accent: Color
    text: str
    text_color: Color
    aspect: float
    """Width / height of the package."""


PRODUCTS: tuple[Product, ...] = (
    Product("cola can", "can", (30, 30, 200), (245, 245, 245), "COLA", (255, 255, 255), 0.55),
    Product("lemon soda can", "can", (60, 210, 150), (20, 120, 20), "LIMO", (20, 70, 20), 0.55),
    Product("water bottle", "bottle", (235, 200, 150), (200, 90, 20), "AQUA", (255, 255, 255), 0.36),
    Product("orange juice", "bottle", (20, 140, 250), (30, 150, 30), "JUICE", (255, 255, 255), 0.40),
    Product("corn flakes", "box", (40, 215, 245), (40, 40, 210), "FLAKES", (250, 250, 250), 0.70),
    Product("green tea", "box", (60, 110, 20), (200, 230, 230), "TEA", (40, 90, 10), 1.25),
    Product("crisps bag", "bag", (150, 40, 120), (40, 220, 250), "CRISPS", (40, 220, 250), 0.75),
    Product("coffee beans", "bag", (30, 50, 80), (80, 170, 210), "COFFEE", (120, 200, 230), 0.62),
    Product("milk carton", "carton", (245, 245, 245), (180, 110, 30), "MILK", (180, 90, 20), 0.50),
    Product("chocolate bar", "bar", (170, 60, 30), (230, 230, 230), "CHOCO", (255, 255, 255), 2.4),
)
LABELS: tuple[str, ...] = (EMPTY_LABEL, *(p.label for p in PRODUCTS))


def _shade_columns(width: int, strength: float) -> np.ndarray:
    """Horizontal light falloff of a cylinder: bright in the middle, darker at the edges."""
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)
    return (1.0 - strength * x**2)[None, :, None]


def _put_text_fitted(image: np.ndarray, text: str, box: tuple[int, int, int, int], color: Color) -> None:
    """Print `text` as large as fits in `box`, centred."""
    x0, y0, x1, y1 = box
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 1.0, 2)
    scale = min((x1 - x0) / max(tw, 1), (y1 - y0) / max(th, 1)) * 0.9
    thickness = max(1, int(scale * 2))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, thickness)
    origin = (x0 + (x1 - x0 - tw) // 2, y0 + (y1 - y0 + th) // 2)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_DUPLEX, scale, color + (255,), thickness, cv2.LINE_AA)


def _draw_can(sprite: np.ndarray, p: Product) -> None:
    h, w = sprite.shape[:2]
    cv2.rectangle(sprite, (0, int(h * 0.06)), (w - 1, int(h * 0.94)), p.body + (255,), -1)
    cv2.ellipse(sprite, (w // 2, int(h * 0.06)), (w // 2 - 1, int(h * 0.05)), 0, 0, 360, (190, 190, 190, 255), -1)
    cv2.ellipse(sprite, (w // 2, int(h * 0.94)), (w // 2 - 1, int(h * 0.05)), 0, 0, 180, p.body + (255,), -1)
    wave = np.array([[x, int(h * (0.62 + 0.05 * np.sin(x / w * 2 * np.pi)))] for x in range(0, w, 4)], np.int32)
    cv2.polylines(sprite, [wave], False, p.accent + (255,), max(2, h // 40))
    _put_text_fitted(sprite, p.text, (int(w * 0.08), int(h * 0.25), int(w * 0.92), int(h * 0.52)), p.text_color)


def _draw_bottle(sprite: np.ndarray, p: Product) -> None:
    h, w = sprite.shape[:2]
    neck_w = int(w * 0.35)
    cv2.rectangle(sprite, ((w - neck_w) // 2, 0), ((w + neck_w) // 2, int(h * 0.08)), p.accent + (255,), -1)
    shoulder = np.array([[(w - neck_w) // 2, int(h * 0.08)], [(w + neck_w) // 2, int(h * 0.08)],
                         [w - 1, int(h * 0.25)], [0, int(h * 0.25)]], np.int32)
    cv2.fillConvexPoly(sprite, shoulder, p.body + (235,))
    cv2.rectangle(sprite, (0, int(h * 0.25)), (w - 1, h - 1), p.body + (235,), -1)
    cv2.rectangle(sprite, (0, int(h * 0.45)), (w - 1, int(h * 0.72)), p.accent + (255,), -1)
    _put_text_fitted(sprite, p.text, (int(w * 0.05), int(h * 0.47), int(w * 0.95), int(h * 0.70)), p.text_color)


def _draw_box(sprite: np.ndarray, p: Product) -> None:
    h, w = sprite.shape[:2]
    cv2.rectangle(sprite, (0, 0), (w - 1, h - 1), p.body + (255,), -1)
    cv2.rectangle(sprite, (int(w * 0.1), int(h * 0.12)), (int(w * 0.9), int(h * 0.42)), p.accent + (255,), -1)
    cv2.circle(sprite, (int(w * 0.5), int(h * 0.7)), int(min(w, h) * 0.18), p.accent + (255,), -1)
    _put_text_fitted(sprite, p.text, (int(w * 0.12), int(h * 0.14), int(w * 0.88), int(h * 0.40)), p.text_color)
    cv2.rectangle(sprite, (0, 0), (w - 1, h - 1), (40, 40, 40, 255), max(1, h // 100))


def _draw_bag(sprite: np.ndarray, p: Product) -> None:
    h, w = sprite.shape[:2]
    zig = [[x, int(h * 0.04) + (6 if (x // 8) % 2 else 0)] for x in range(0, w, 8)]
    body = np.array(zig + [[w - 1, int(h * 0.96)], [0, int(h * 0.96)]], np.int32)
    cv2.fillPoly(sprite, [body], p.body + (255,))
    cv2.ellipse(sprite, (w // 2, int(h * 0.62)), (int(w * 0.32), int(h * 0.16)), 0, 0, 360, p.accent + (255,), -1)
    _put_text_fitted(sprite, p.text, (int(w * 0.06), int(h * 0.18), int(w * 0.94), int(h * 0.40)), p.text_color)


def _draw_carton(sprite: np.ndarray, p: Product) -> None:
    h, w = sprite.shape[:2]
    gable = np.array([[0, int(h * 0.2)], [w // 2, int(h * 0.02)], [w - 1, int(h * 0.2)]], np.int32)
    cv2.fillConvexPoly(sprite, gable, p.accent + (255,))
    cv2.rectangle(sprite, (0, int(h * 0.2)), (w - 1, h - 1), p.body + (255,), -1)
    cv2.rectangle(sprite, (0, int(h * 0.78)), (w - 1, h - 1), p.accent + (255,), -1)
    _put_text_fitted(sprite, p.text, (int(w * 0.06), int(h * 0.35), int(w * 0.94), int(h * 0.62)), p.text_color)


def _draw_bar(sprite: np.ndarray, p: Product) -> None:
    h, w = sprite.shape[:2]
    cv2.rectangle(sprite, (0, 0), (w - 1, h - 1), p.body + (255,), -1)
    for x in (int(w * 0.04), int(w * 0.96)):
        cv2.line(sprite, (x, 0), (x, h - 1), p.accent + (255,), max(2, w // 60))
    _put_text_fitted(sprite, p.text, (int(w * 0.12), int(h * 0.15), int(w * 0.88), int(h * 0.85)), p.text_color)


def _draw_jar(sprite: np.ndarray, p: Product) -> None:
    h, w = sprite.shape[:2]
    cv2.rectangle(sprite, (int(w * 0.08), 0), (int(w * 0.92), int(h * 0.16)), p.accent + (255,), -1)
    cv2.rectangle(sprite, (0, int(h * 0.16)), (w - 1, h - 1), p.body + (255,), -1)
    cv2.ellipse(sprite, (w // 2, int(h * 0.6)), (int(w * 0.42), int(h * 0.2)), 0, 0, 360, (235, 235, 235, 255), -1)
    _put_text_fitted(sprite, p.text, (int(w * 0.14), int(h * 0.48), int(w * 0.86), int(h * 0.72)), p.text_color)


def _draw_tube(sprite: np.ndarray, p: Product) -> None:
    h, w = sprite.shape[:2]
    body = np.array([[int(w * 0.3), 0], [int(w * 0.7), 0], [w - 1, int(h * 0.85)], [0, int(h * 0.85)]], np.int32)
    cv2.fillConvexPoly(sprite, body, p.body + (255,))
    cv2.rectangle(sprite, (int(w * 0.25), int(h * 0.85)), (int(w * 0.75), h - 1), p.accent + (255,), -1)
    cv2.line(sprite, (int(w * 0.1), int(h * 0.3)), (int(w * 0.9), int(h * 0.3)), p.accent + (255,), max(2, h // 30))
    _put_text_fitted(sprite, p.text, (int(w * 0.12), int(h * 0.4), int(w * 0.88), int(h * 0.7)), p.text_color)


def _draw_cup(sprite: np.ndarray, p: Product) -> None:
    h, w = sprite.shape[:2]
    body = np.array([[0, int(h * 0.1)], [w - 1, int(h * 0.1)], [int(w * 0.85), h - 1], [int(w * 0.15), h - 1]], np.int32)
    cv2.fillConvexPoly(sprite, body, p.body + (255,))
    cv2.rectangle(sprite, (0, 0), (w - 1, int(h * 0.1)), p.accent + (255,), -1)
    cv2.circle(sprite, (w // 2, int(h * 0.68)), int(w * 0.16), p.accent + (255,), -1)
    _put_text_fitted(sprite, p.text, (int(w * 0.1), int(h * 0.2), int(w * 0.9), int(h * 0.45)), p.text_color)


_DRAWERS: dict[str, Callable[[np.ndarray, Product], None]] = {
    "can": _draw_can, "bottle": _draw_bottle, "box": _draw_box, "bag": _draw_bag, "carton": _draw_carton, "bar": _draw_bar,
    "jar": _draw_jar, "tube": _draw_tube, "cup": _draw_cup,
}
"""jar, tube and cup appear only among the products the demo model is not trained on (capture/new_products.py)."""
_SHADING = {"can": 0.55, "bottle": 0.45, "bag": 0.25, "jar": 0.35, "cup": 0.3}


def draw_product(product: Product, height: int = SPRITE_HEIGHT) -> np.ndarray:
    """The product's front as a BGRA sprite (alpha 0 outside the package), shaded by its shape."""
    width = max(8, int(round(height * product.aspect)))
    if product.aspect > 1.0:
        width, height = int(round(height * 0.9)), int(round(height * 0.9 / product.aspect))
    sprite = np.zeros((height, width, 4), np.uint8)
    _DRAWERS[product.shape](sprite, product)
    strength = _SHADING.get(product.shape)
    if strength:
        shaded = sprite[:, :, :3].astype(np.float32) * _shade_columns(width, strength)
        sprite[:, :, :3] = np.clip(shaded, 0, 255).astype(np.uint8)
    return sprite
