"""Products the demo model was not trained on: for enrolling (open catalog) and as unknown items.

New shapes (jar, tube, cup), new colours and names, and look-alikes: a trained product's package with
another brand colour or name, the hard case for telling a new product from a trained one.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from capture.catalog import PRODUCTS, Color, Product
from capture.catalog_dataset import RENDER_SIZE, render_in_workers, render_product

NEW_SHAPES = ("jar", "tube", "cup")
ALL_SHAPES = ("can", "bottle", "box", "bag", "carton", "bar", *NEW_SHAPES)
_ASPECT = {"can": 0.55, "bottle": 0.38, "box": 0.75, "bag": 0.7, "carton": 0.5, "bar": 2.4, "jar": 0.8, "tube": 0.45,
           "cup": 0.75}
_SYLLABLES = ("KA", "RO", "MI", "ZU", "VEL", "TOR", "NA", "PIX", "LU", "BEX", "SOL", "DEO", "FIN", "GAR", "QUI")


def _color(rng: np.random.Generator) -> Color:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _name(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))


def new_product(rng: np.random.Generator, index: int) -> Product:
    """A product of any shape with random brand colours and a made-up name."""
    shape = str(rng.choice(ALL_SHAPES))
    text = _name(rng)
    return Product(f"new {index} {text.lower()} {shape}", shape, _color(rng), _color(rng), text, _color(rng),
                   _ASPECT[shape] * float(rng.uniform(0.9, 1.1)))


def look_alike(rng: np.random.Generator, index: int) -> Product:
    """A trained product's package in another brand's colour or with another name."""
    model = PRODUCTS[int(rng.integers(len(PRODUCTS)))]
    if rng.random() < 0.5:
        body, text = _color(rng), model.text
    else:
        body, text = model.body, _name(rng)
    return Product(f"new {index} {text.lower()} {model.shape} like {model.label}", model.shape, body, model.accent,
                   text, model.text_color, model.aspect)


def new_products(count: int, seed: int, look_alike_share: float = 0.3) -> tuple[Product, ...]:
    """`count` products unlike the catalog's, about `look_alike_share` of them look-alikes of trained ones; the same
    seed gives the same products."""
    rng = np.random.default_rng([seed, 17])
    return tuple(look_alike(rng, i) if rng.random() < look_alike_share else new_product(rng, i) for i in range(count))


def render_products(products: tuple[Product, ...], per_product: int, seed: int, out_size: int,
                    render_size: int = RENDER_SIZE, workers: int = 1,
                    progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """`per_product` training pictures of each product, as `render_class` draws the catalog's, in product order (the
    same pictures with any number of `workers`)."""
    jobs = [(product, j, per_product, seed, out_size, render_size) for j, product in enumerate(products)]
    return np.concatenate(render_in_workers(render_product, jobs, workers, progress))

