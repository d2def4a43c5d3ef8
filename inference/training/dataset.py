"""Image datasets for fine-tuning: a one-folder-per-class tree on disk, or pictures made in memory."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from inference.preprocess import resize_and_crop

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_IMAGE_BYTES = 50 * 1024 * 1024


class DatasetError(Exception):
    """A dataset that cannot be trained on; the message says what to fix."""


@dataclass
class ImageDataset:
    """Square uint8 BGR images (already resized to the training `resize` size) with integer labels."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> "ImageDataset":
        """The images at `indices`, same classes."""
        return ImageDataset(self.images[indices], self.labels[indices], self.classes)

    def per_class(self) -> dict[str, int]:
        """How many images each class has."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(count) for name, count in zip(self.classes, counts)}


def to_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to `size` and cut the centre square, as inference preprocessing does."""
    return np.ascontiguousarray(resize_and_crop(image, size, size))


def read_image(path: Path) -> Optional[np.ndarray]:
    """Decode an image file as BGR, or None when it is unreadable or corrupt."""
    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            return None
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return image if image is not None and min(image.shape[:2]) >= 8 else None


def load_image_folder(root: Path, size: int, progress: Optional[Callable[[int, int], None]] = None) -> ImageDataset:
    """Read DATA_DIR/<class>/<image> into memory at `size`; skip (and count) corrupt files, refuse empty classes."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such directory; expected one folder per class with jpg/png/webp images")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {d.name: sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES) for d in class_dirs}
    empty = [name for name, found in files.items() if not found]
    if empty:
        raise DatasetError(f"{root}: class folder(s) without jpg/png/webp images: {', '.join(empty)}; add images or remove them")
    if len(files) < 2:
        raise DatasetError(f"{root}: found {len(files)} class folder(s); fine-tuning needs at least 2 (one folder per class)")
    return _decode_all(files, size, progress)


def _decode_all(files: dict[str, list[Path]], size: int, progress) -> ImageDataset:
    classes = tuple(files)
    total = sum(len(found) for found in files.values())
    images, labels, skipped, done = [], [], [], 0
    for label, name in enumerate(classes):
        for path in files[name]:
            image = read_image(path)
            done += 1
            if progress:
                progress(done, total)
            if image is None:
                skipped.append(path)
                continue
            images.append(to_square(image, size))
            labels.append(label)
    for path in skipped[:10]:
        log.warning("skipped unreadable image %s", path)
    if len(skipped) > 10:
        log.warning("skipped %d unreadable images in all", len(skipped))
    counts = np.bincount(np.array(labels, dtype=np.int64), minlength=len(classes))
    unusable = [name for name, count in zip(classes, counts) if count == 0]
    if unusable:
        raise DatasetError(f"no readable images left in class folder(s): {', '.join(unusable)}")
    return ImageDataset(np.stack(images), np.array(labels, dtype=np.int64), classes, skipped=len(skipped))


def stratified_split(dataset: ImageDataset, val_fraction: float, seed: int = 0,
                     min_per_class: int = 0) -> tuple[ImageDataset, ImageDataset]:
    """Split off `val_fraction` of every class, but at least `min_per_class` images while that leaves three
    quarters for training (and at least one image per class when it has two or more)."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in range(len(dataset.classes)):
        members = rng.permutation(np.flatnonzero(dataset.labels == label))
        take = max(int(round(len(members) * val_fraction)), min(min_per_class, len(members) // 4))
        take = min(max(take, 1 if len(members) >= 2 else 0), len(members) - 1)
        val_idx += list(members[:take])
        train_idx += list(members[take:])
    return dataset.subset(np.array(sorted(train_idx))), dataset.subset(np.array(sorted(val_idx), dtype=np.int64))


def from_arrays(images: Sequence[np.ndarray], labels: Sequence[int], classes: Sequence[str], size: int) -> ImageDataset:
    """A dataset from pictures made in memory (the demo catalog)."""
    squares = np.stack([to_square(image, size) for image in images])
    return ImageDataset(squares, np.asarray(labels, dtype=np.int64), tuple(classes))
