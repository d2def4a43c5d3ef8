"""Product photos as a shop owner takes them with a phone: 320×240, the product anywhere in the picture, under
varied light, sometimes blurred. Folders of them stand in for a user's photos in fine-tuning tests and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from capture.catalog import PRODUCTS, Product
from capture.scene import (
    Pose,
    SpriteCache,
    add_noise,
    apply_lighting,
    blur,
    make_background,
    paste,
    random_lighting,
)

PHOTO_SIZE = (320, 240)
DISTINCT_PRODUCTS = ("cola can", "water bottle", "corn flakes", "green tea", "crisps bag", "milk carton",
                     "chocolate bar", "lemon soda can", "coffee beans", "orange juice")
"""Products in order of how clearly they differ from the ones before (colour and shape)."""


def products_named(labels: Sequence[str]) -> list[Product]:
    """The catalog products with these labels, in this order."""
    by_label = {product.label: product for product in PRODUCTS}
    return [by_label[label] for label in labels]


def render_photo(product: Product, rng: np.random.Generator, sprites: SpriteCache,
                 size: tuple[int, int] = PHOTO_SIZE) -> np.ndarray:
    """One BGR photo of `product` at a random place, size and tilt, with random light, blur and noise."""
    width, height = size
    frame = make_background(width, height, rng)
    pose = Pose(rng.uniform(0.25, 0.75), rng.uniform(0.3, 0.7), rng.uniform(0.4, 0.75) * (0.6 if product.aspect > 1.5 else 1.0),
                rng.uniform(-30, 30))
    paste(frame, sprites.get(product), pose, shadow=rng.uniform(0.1, 0.4))
    frame = apply_lighting(frame, random_lighting(rng))
    frame = blur(frame, rng.uniform(0, 1.8), int(rng.integers(2, 8)) if rng.random() < 0.25 else 0)
    return add_noise(frame, rng.normal(0, rng.uniform(1, 6), frame.shape).astype(np.int16))


def render_photos(products: Sequence[Product], per_class: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """`per_class` photos of each product (labels are indices into `products`), reproducible from `seed`."""
    sprites = SpriteCache()
    images, labels = [], []
    for index, product in enumerate(products):
        for number in range(per_class):
            images.append(render_photo(product, np.random.default_rng([seed, index, number]), sprites))
            labels.append(index)
    return images, labels


def write_photo_folder(root: Path, products: Sequence[Product], per_class: int, seed: int) -> Path:
    """ROOT/<label>/<n>.jpg, one folder per product, as `streamrec finetune` reads them."""
    images, labels = render_photos(products, per_class, seed)
    for number, (image, label) in enumerate(zip(images, labels)):
        folder = root / products[label].label.replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{number:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return root
