"""Render labelled catalog pictures for training and validation, in parallel processes."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from capture.catalog import LABELS, PRODUCTS, Product
from capture.scene import SpriteCache, render_sample

RENDER_SIZE = 224


def render_class(label_index: int, count: int, seed: int, out_size: int, render_size: int = RENDER_SIZE) -> np.ndarray:
    """`count` pictures of one label (0 = empty lane), rendered at `render_size` and shrunk to `out_size` squares."""
    product = None if label_index == 0 else PRODUCTS[label_index - 1]
    return render_product(product, label_index, count, seed, out_size, render_size)


def render_product(product: Optional[Product], index: int, count: int, seed: int, out_size: int,
                   render_size: int = RENDER_SIZE) -> np.ndarray:
    """`count` pictures of the `index`-th product of a set (None: the empty lane), rendered at `render_size` and shrunk
    to `out_size` squares; picture i is drawn from the seed [seed, index, i]."""
    sprites = SpriteCache()
    images = np.empty((count, out_size, out_size, 3), np.uint8)
    for i in range(count):
        picture = render_sample(product, np.random.default_rng([seed, index, i]), render_size, sprites)
        images[i] = cv2.resize(picture, (out_size, out_size), interpolation=cv2.INTER_AREA)
    return images


def render_catalog(per_class: int, seed: int, out_size: int, workers: int = 2,
                   progress: Optional[Callable[[int, int], None]] = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Pictures of every label (`per_class` each): images (N, out_size, out_size, 3), labels (N,), label names."""
    jobs = [(label, per_class, seed, out_size) for label in range(len(LABELS))]
    results = render_in_workers(render_class, jobs, workers, progress)
    labels = np.repeat(np.arange(len(LABELS)), per_class)
    return np.concatenate(results), labels, LABELS


def render_in_workers(render: Callable[..., np.ndarray], jobs: Sequence[tuple], workers: int,
                      progress: Optional[Callable[[int, int], None]] = None) -> list[np.ndarray]:
    """`render(*job)` for every job, in order, in `workers` processes (1: in this one); `progress(done, total)` after
    each job. `render` must be a module-level function (the processes are spawned: torch's threads make fork unsafe)."""
    results: list[np.ndarray] = []
    if workers <= 1:
        outputs = (render(*job) for job in jobs)
        for done, images in enumerate(outputs, 1):
            results.append(images)
            if progress:
                progress(done, len(jobs))
        return results
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done, images in enumerate(pool.map(render, *zip(*jobs)), 1):
            results.append(images)
            if progress:
                progress(done, len(jobs))
    return results
