"""`streamrec enroll`: add a product to a bundle's gallery from photos or a camera, or remove one; no retraining.

The gallery is written beside the bundle (`BUNDLE.gallery`, atomically).
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TextIO

import numpy as np

from inference.bundle import load_bundle
from inference.enrollment import MAX_CAMERA_VIEWS, Enroller, EnrollmentError, ViewTally
from inference.enrollment_steps import checked_label, current_gallery, preview_of, with_look_alike
from inference.gallery import Gallery, gallery_path_for, save_gallery
from inference.training.dataset import IMAGE_SUFFIXES, read_image
from stream.tools.progress import ProgressBar

DEFAULT_EMPTY_LABELS = ("empty",)


@dataclass(frozen=True)
class EnrollRequest:
    """What `streamrec enroll` was asked to do."""

    bundle: Path
    label: Optional[str] = None
    images: Optional[Path] = None
    source: Optional[str] = None
    seconds: float = 10.0
    remove: Optional[str] = None
    empty_labels: tuple[str, ...] = DEFAULT_EMPTY_LABELS



def run_enroll(request: EnrollRequest, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
    """Enroll or remove; raises EnrollmentError (bad use, too few views) or ModelError (bundle, gallery)."""
    bundle = load_bundle(request.bundle)
    path = gallery_path_for(request.bundle)
    gallery = current_gallery(bundle, path)
    if request.remove is not None:
        _remove(gallery, request.remove, path, out)
        return
    label = checked_label(request.label, bundle, request.bundle.name)
    started = time.monotonic()
    enroller = Enroller(bundle.to_classifier(request.bundle), bundle.features, request.empty_labels)
    tally = ViewTally()
    if request.images is not None:
        views, source = _photos(request.images, tally, err), f"images:{request.images}"
    else:
        views, source = _camera_frames(request.source or "", request.seconds, err), f"camera:{request.source}"
    entry = enroller.entry(label, enroller.keep(views, tally), source, tally, views)
    preview = preview_of(bundle, gallery.with_entry(entry), enroller, views, label)
    updated = gallery.with_entry(with_look_alike(entry, preview))
    save_gallery(updated, path)
    out.write(f"enrolled {label!r}: {tally.line()}, {len(entry.prototypes)} prototypes, in "
              f"{time.monotonic() - started:.1f} s\n")
    if preview is not None:
        out.write(preview.line() + "\n")
        if preview.warning():
            undo = f"streamrec enroll --model {shlex.quote(str(request.bundle))} --remove {shlex.quote(label)}"
            err.write(f"{preview.warning()}; `{undo}` undoes it\n")
    out.write(f"gallery {path}: {len(updated.entries)} enrolled product(s)\n")



def _remove(gallery: Gallery, label: str, path: Path, out: TextIO) -> None:
    try:
        updated = gallery.without(label)
    except KeyError:
        known = ", ".join(repr(name) for name in gallery.labels) or "none"
        raise EnrollmentError(f"{label!r} is not enrolled (enrolled: {known})") from None
    save_gallery(updated, path)
    out.write(f"removed {label!r}; gallery {path}: {len(updated.entries)} enrolled product(s)\n")


def _photos(folder: Path, tally: ViewTally, err: TextIO) -> list[np.ndarray]:
    folder = Path(folder)
    if not folder.is_dir():
        raise EnrollmentError(f"{folder}: no such folder; give a folder of jpg/png/webp photos of the product")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise EnrollmentError(f"{folder}: no jpg/png/webp photos found")
    bar = ProgressBar("reading photos", len(files), err)
    views = []
    for done, file in enumerate(files, 1):
        image = read_image(file)
        if image is None:
            tally.unreadable += 1
        else:
            views.append(image)
        bar.update(done)
    bar.close(f"{len(views)} photos")
    tally.offered += tally.unreadable
    return views


def _camera_frames(spec: str, seconds: float, err: TextIO) -> list[np.ndarray]:
    from stream.tools.enroll_camera import record

    return record(spec, seconds, err, MAX_CAMERA_VIEWS)
