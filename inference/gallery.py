"""The gallery of enrolled products: a few L2-normalized prototypes per label, kept beside the bundle they belong to.

`BUNDLE.gallery` is one NumPy archive: the prototypes, which label each belongs to, and a JSON header (the
bundle's model id, the feature width, and per label the number of views kept and where they came from). It is
written atomically; a file that does not read back, or that belongs to other weights, is refused with a
message saying what to do, never taken as an empty gallery.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from inference.artifacts import staged
from inference.colour_look import HUE_BINS
from inference.errors import ModelError
from inference.second_look import OLDER_REFERENCE_WIDTH, REFERENCE_WIDTH

log = logging.getLogger(__name__)

GALLERY_FORMAT = "streamrec-gallery"
GALLERY_VERSION = 1
GALLERY_SUFFIX = ".gallery"


class GalleryError(ModelError):
    """A gallery file is damaged, of a newer format, or made with other weights (exit 78)."""


def gallery_path_for(bundle: Path) -> Path:
    """Where a bundle's gallery lives: `products.bundle` → `products.bundle.gallery`."""
    bundle = Path(bundle)
    return bundle.with_name(bundle.name + GALLERY_SUFFIX)


def normalized(vectors: np.ndarray, center: Optional[np.ndarray] = None) -> np.ndarray:
    """Rows shifted by `center` (the mean feature of the trained pictures) and scaled to unit length."""
    shifted = np.asarray(vectors, np.float32) - (0.0 if center is None else center)
    norms = np.linalg.norm(shifted, axis=1, keepdims=True)
    return shifted / np.maximum(norms, 1e-12)


def prototypes_of(unit_vectors: np.ndarray, count: int, seed: int = 0, iterations: int = 20) -> np.ndarray:
    """Up to `count` unit-length k-means centres (spherical k-means) of unit vectors: the views' main looks."""
    views = np.asarray(unit_vectors, np.float32)
    if len(views) <= count:
        return views.copy()
    rng = np.random.default_rng(seed)
    centres = views[_spread_start(views, count, rng)].copy()
    for _ in range(iterations):
        nearest = np.argmax(views @ centres.T, axis=1)
        for k in range(count):
            members = views[nearest == k]
            if len(members):
                centres[k] = members.mean(axis=0)
        centres = normalized(centres)
    return centres


def _spread_start(views: np.ndarray, count: int, rng: np.random.Generator) -> list[int]:
    """k-means++-style starting points: each next one far from those chosen."""
    chosen = [int(rng.integers(len(views)))]
    for _ in range(count - 1):
        distance = 1.0 - np.max(views @ views[chosen].T, axis=1)
        weights = np.maximum(distance, 0.0) ** 2
        total = weights.sum()
        chosen.append(int(rng.choice(len(views), p=weights / total)) if total > 0 else int(rng.integers(len(views))))
    return chosen


RECORDED_SOURCES = ("camera:", "web:")
"""Sources of entries enrolled from a camera recording (`streamrec enroll --source`, the web page)."""


@dataclass(frozen=True)
class GalleryEntry:
    """One enrolled product."""

    label: str
    prototypes: np.ndarray
    """(k, D) unit vectors."""
    views: int
    """Pictures the prototypes were made from."""
    source: str = ""
    """Where the views came from, e.g. `images:/photos/oat milk` or `camera:usb:0`."""
    enrolled_at: str = ""
    look_alike: str = ""
    """The known product the model could hardly tell this one from when it was enrolled ("" for none)."""
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, REFERENCE_WIDTH), np.uint8))
    """(n, 133) uint8 rows: SIFT keypoints of some of its views, each with its view number and position (the
    second look's references; none for products enrolled before 2026-12-06, or without positions before 2026-12-07)."""
    colours: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    """(HUE_BINS,) the colour signature of its pictures (colour_look.py); empty for a grey product, one enrolled from
    a camera recording, or one enrolled before 2026-12-08."""

    @property
    def recorded(self) -> bool:
        """Its views are frames of one camera recording (`streamrec enroll --source`, the web page's "Add product"):
        they share the recording's belt and hand, so their references match each other far better than a
        product on the lane matches them."""
        return self.source.startswith(RECORDED_SOURCES)

    def summary(self) -> dict[str, Any]:
        return {"label": self.label, "views": self.views, "prototypes": int(len(self.prototypes)),
                "source": self.source, "enrolled_at": self.enrolled_at, "look_alike": self.look_alike or None,
                "keypoints": int(len(self.keypoints)), "colours": bool(len(self.colours))}


@dataclass(frozen=True)
class Gallery:
    """Every enrolled product of one model (identified by its `model_id`)."""

    model_id: str
    feature_dim: int
    entries: tuple[GalleryEntry, ...] = ()
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(entry.label for entry in self.entries)

    def with_entry(self, entry: GalleryEntry) -> "Gallery":
        """This gallery with `entry` added, replacing an entry of the same label."""
        if entry.prototypes.ndim != 2 or entry.prototypes.shape[1] != self.feature_dim:
            raise ValueError(f"prototypes of width {entry.prototypes.shape} do not fit features of {self.feature_dim}")
        kept = tuple(e for e in self.entries if e.label != entry.label)
        return replace(self, entries=kept + (entry,))

    def without(self, label: str) -> "Gallery":
        """This gallery without `label` (KeyError when it is not enrolled)."""
        if label not in self.labels:
            raise KeyError(label)
        return replace(self, entries=tuple(e for e in self.entries if e.label != label))

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(P, D) prototypes of every entry, and (P,) the entry index of each."""
        if not self.entries:
            return np.zeros((0, self.feature_dim), np.float32), np.zeros((0,), np.int64)
        rows = np.concatenate([entry.prototypes for entry in self.entries]).astype(np.float32)
        owners = np.concatenate([np.full(len(entry.prototypes), i) for i, entry in enumerate(self.entries)])
        return rows, owners

    def keypoint_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(K, 133) the second look's references of every entry, and (K,) the entry index of each."""
        rows = [entry.keypoints for entry in self.entries]
        owners = [np.full(len(entry.keypoints), i, np.int64) for i, entry in enumerate(self.entries)]
        if not rows:
            return np.zeros((0, REFERENCE_WIDTH), np.uint8), np.zeros((0,), np.int64)
        return np.concatenate(rows).astype(np.uint8), np.concatenate(owners)

    def recorded_labels(self) -> tuple[str, ...]:
        """The labels of entries enrolled from a camera recording (see GalleryEntry.recorded)."""
        return tuple(entry.label for entry in self.entries if entry.recorded)

    def keypoints_by_label(self) -> dict[str, np.ndarray]:
        """The second look's references of the entries that have some."""
        return {entry.label: entry.keypoints for entry in self.entries if len(entry.keypoints)}

    def colours_by_label(self) -> dict[str, np.ndarray]:
        """The colour signatures of the entries that have one."""
        return {entry.label: entry.colours for entry in self.entries if len(entry.colours)}

    def colour_matrix(self) -> np.ndarray:
        """(entries, HUE_BINS) every entry's colour signature, zeros for those without one."""
        rows = [entry.colours if len(entry.colours) == HUE_BINS else np.zeros(HUE_BINS, np.float32)
                for entry in self.entries]
        return np.array(rows, np.float32).reshape(len(rows), HUE_BINS)


def new_entry(label: str, unit_views: np.ndarray, prototypes_per_label: int, source: str,
              keypoints: Optional[np.ndarray] = None, colours: Optional[np.ndarray] = None) -> GalleryEntry:
    """An entry from the normalized features of its kept views (and the second look's references, and its colour
    signature)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    entry = GalleryEntry(label, prototypes_of(unit_views, prototypes_per_label), int(len(unit_views)), source, now)
    if keypoints is not None:
        entry = replace(entry, keypoints=np.asarray(keypoints, np.uint8))
    return entry if colours is None else replace(entry, colours=np.asarray(colours, np.float32))


def save_gallery(gallery: Gallery, path: Path) -> Path:
    """Write atomically: a running service reading it sees the old gallery or the new one, never half."""
    rows, owners = gallery.matrix()
    keypoints, keypoint_owners = gallery.keypoint_matrix()
    header = {"format": GALLERY_FORMAT, "format_version": GALLERY_VERSION, "model_id": gallery.model_id,
              "feature_dim": gallery.feature_dim, "entries": [e.summary() for e in gallery.entries],
              "calibration": gallery.calibration}
    with staged(Path(path)) as partial:
        with open(partial, "wb") as handle:
            np.savez(handle, header=np.frombuffer(json.dumps(header).encode(), np.uint8), prototypes=rows,
                     owners=owners, keypoints=keypoints, keypoint_owners=keypoint_owners,
                     colours=gallery.colour_matrix())
        load_gallery(partial, gallery.model_id)
        partial.chmod(0o644)
    return Path(path)


def load_gallery(path: Path, model_id: Optional[str] = None) -> Gallery:
    """Read a gallery; GalleryError when it is damaged, newer, or (with `model_id`) made for other weights."""
    path = Path(path)
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as archive:
            header = json.loads(archive["header"].tobytes().decode())
            rows, owners = archive["prototypes"], archive["owners"]
            keypoints = _stored_keypoints(archive)
            colours = archive["colours"] if "colours" in archive.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise GalleryError(f"gallery {path} is damaged or truncated ({exc.__class__.__name__}: {str(exc)[:120]}); "
                           f"restore it from a backup, or move it away and enroll the products again") from None
    gallery = _with_keypoints(_checked(header, rows, owners, path, model_id), keypoints, path)
    return _with_colours(gallery, colours, path)


def _with_colours(gallery: Gallery, colours: Optional[np.ndarray], path: Path) -> Gallery:
    """The entries with their stored colour signatures (none in a gallery written before 2026-12-08)."""
    if colours is None:
        return gallery
    if colours.shape != (len(gallery.entries), HUE_BINS) or not np.all(np.isfinite(colours)):
        raise GalleryError(f"gallery {path} is inconsistent (colour table {colours.shape}); enroll again")
    entries = tuple(replace(entry, colours=row.astype(np.float32) if row.any() else np.zeros(0, np.float32))
                    for entry, row in zip(gallery.entries, colours))
    return replace(gallery, entries=entries)


def _stored_keypoints(archive) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The archive's second-look references, None in a gallery written before they existed."""
    if "keypoints" not in archive.files:
        return None
    return archive["keypoints"], archive["keypoint_owners"]


def _with_keypoints(gallery: Gallery, stored: Optional[tuple[np.ndarray, np.ndarray]], path: Path) -> Gallery:
    if stored is None:
        return gallery
    rows, owners = stored
    if rows.ndim == 2 and rows.shape[1] == OLDER_REFERENCE_WIDTH and len(owners) == len(rows):
        labels = sorted({gallery.entries[i].label for i in np.unique(owners) if 0 <= i < len(gallery.entries)})
        log.warning("gallery %s: the second-look references of %s are of the format before 2026-12-07 (no keypoint "
                    "positions) and are not used; enroll these products again to let the second look tell them from "
                    "look-alikes", path, ", ".join(repr(label) for label in labels) or "no product")
        return gallery
    if rows.ndim != 2 or rows.shape[1] != REFERENCE_WIDTH or len(owners) != len(rows) or \
            (len(owners) and (owners.min() < 0 or owners.max() >= len(gallery.entries))):
        raise GalleryError(f"gallery {path} is inconsistent (keypoint table {rows.shape}); enroll again")
    entries = tuple(replace(entry, keypoints=rows[owners == i].astype(np.uint8))
                    for i, entry in enumerate(gallery.entries))
    return replace(gallery, entries=entries)


def _checked(header: Any, rows: np.ndarray, owners: np.ndarray, path: Path, model_id: Optional[str]) -> Gallery:
    if not isinstance(header, dict) or header.get("format") != GALLERY_FORMAT:
        raise GalleryError(f"{path} is not a streamrec gallery")
    if int(header.get("format_version", 0)) > GALLERY_VERSION:
        raise GalleryError(f"{path} was written by a newer streamrec (gallery format {header['format_version']}); "
                           "upgrade")
    if model_id is not None and header.get("model_id") != model_id:
        raise GalleryError(f"{path} was enrolled with model {header.get('model_id')}, not {model_id}: its prototypes "
                           "do not fit these weights; move it away and enroll the products again with this model")
    entries = header.get("entries") or []
    if rows.ndim != 2 or rows.shape[1] != int(header.get("feature_dim", -1)) or len(owners) != len(rows):
        raise GalleryError(f"gallery {path} is inconsistent (prototype table {rows.shape}); enroll again")
    built = []
    for index, summary in enumerate(entries):
        mine = rows[owners == index]
        if not len(mine) or not summary.get("label"):
            raise GalleryError(f"gallery {path} is inconsistent (entry {index} has no prototypes); enroll again")
        built.append(GalleryEntry(str(summary["label"]), mine.astype(np.float32), int(summary.get("views", 0)),
                                  str(summary.get("source", "")), str(summary.get("enrolled_at", "")),
                                  str(summary.get("look_alike") or "")))
    return Gallery(str(header.get("model_id")), int(header["feature_dim"]), tuple(built),
                   dict(header.get("calibration") or {}))


def describe(gallery: Gallery) -> list[dict[str, Any]]:
    """What `streamrec model info` lists: each label with its views and prototypes."""
    return [entry.summary() for entry in gallery.entries]


def labels_clash(gallery: Gallery, trained: Sequence[str]) -> list[str]:
    """Gallery labels that are also trained labels (enrolling a trained label adds views to it; see enroll)."""
    return [label for label in gallery.labels if label in set(trained)]
