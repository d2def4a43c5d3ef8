"""Render labelled catalog pictures for training and validation, in parallel processes."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Optional

import cv2
import numpy as np

from capture.catalog import LABELS, PRODUCTS
from capture.scene import SpriteCache, render_sample

RENDER_SIZE = 224


def render_class(label_index: int, count: int, seed: int, out_size: int, render_size: int = RENDER_SIZE) -> np.ndarray:
    """`count` pictures of one label (0 = empty lane), rendered at `render_size` and shrunk to `out_size` squares."""
    sprites = SpriteCache()
    product = None if label_index == 0 else PRODUCTS[label_index - 1]
    images = np.empty((count, out_size, out_size, 3), np.uint8)
    for i in range(count):
        picture = render_sample(product, np.random.default_rng([seed, label_index, i]), render_size, sprites)
        images[i] = cv2.resize(picture, (out_size, out_size), interpolation=cv2.INTER_AREA)
    return images


def render_catalog(per_class: int, seed: int, out_size: int, workers: int = 2,
                   progress: Optional[Callable[[int, int], None]] = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Pictures of every label (`per_class` each): images (N, out_size, out_size, 3), labels (N,), label names."""
    jobs = [(label, per_class, seed, out_size) for label in range(len(LABELS))]
    results: list[np.ndarray] = []
    if workers <= 1:
        for done, job in enumerate(jobs, 1):
            results.append(render_class(*job))
            if progress:
                progress(done, len(jobs))
    else:
        context = multiprocessing.get_context("spawn")  # torch's threads make fork unsafe
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for done, images in enumerate(pool.map(render_class, *zip(*jobs)), 1):
                results.append(images)
                if progress:
                    progress(done, len(jobs))
    labels = np.repeat(np.arange(len(LABELS)), per_class)
    return np.concatenate(results), labels, LABELS
