"""Pictures for int8 calibration and for auto's agreement check: the kiosk's own, or rendered catalog scenes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from capture.catalog import LABELS
from capture.catalog_dataset import RENDER_SIZE, render_class
from inference.training.dataset import IMAGE_SUFFIXES, read_image

log = logging.getLogger(__name__)


def rendered_frames(count: int, seed: int) -> list[np.ndarray]:
    """Real-looking checkout pictures from the demo catalog, every label in turn."""
    per_label = -(-count // len(LABELS))
    images = [image for label in range(len(LABELS)) for image in render_class(label, per_label, seed, RENDER_SIZE)]
    order = np.random.default_rng(seed).permutation(len(images))[:count]
    return [images[i] for i in order]


def folder_frames(folder: Path) -> Callable[[int, int], list[np.ndarray]]:
    """Pictures from a folder (recursively); each seed takes a different slice, cycling when there are few."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"model.calibration_dir {folder} holds no jpg/png/webp pictures")

    def frames(count: int, seed: int) -> list[np.ndarray]:
        order = np.random.default_rng(seed).permutation(len(paths))
        picked = [read_image(paths[order[i % len(paths)]]) for i in range(count)]
        usable = [image for image in picked if image is not None]
        if len(paths) < count:
            log.warning("model.calibration_dir has %d pictures; %d are better", len(paths), count)
        return usable or rendered_frames(count, seed)

    return frames


def frame_source(calibration_dir: Optional[Path]) -> Callable[[int, int], Sequence[np.ndarray]]:
    """The configured pictures, or rendered ones."""
    return folder_frames(calibration_dir) if calibration_dir else rendered_frames
