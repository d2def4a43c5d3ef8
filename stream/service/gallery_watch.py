"""Keep the running model's open catalog in step with its bundle's gallery: `streamrec enroll` writes
`BUNDLE.gallery`, and the next check (every second) swaps the new catalog in between batches, without a restart
or a gap. A gallery that does not read back keeps the last good one in use (logged); at start it stops the start
(exit 78), as a damaged bundle does."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Optional

from config.schema import ModelConfig
from inference.bundle import load_bundle
from inference.errors import ModelError
from inference.feature_stats import FeatureStats
from inference.gallery import Gallery, gallery_path_for, load_gallery
from inference.open_catalog import DEFAULT_SPLIT_BELOW, DEFAULT_UNKNOWN_THRESHOLD, OpenCatalog
from stream.pipeline.model_slot import ModelSlot

log = logging.getLogger(__name__)

CHECK_S = 1.0


class GalleryWatcher(threading.Thread):
    """Checks the gallery file's size and time every `interval` seconds until `stop`."""

    def __init__(self, slot: ModelSlot, bundle: Path, labels: tuple[str, ...], model_id: str, stats: FeatureStats,
                 stop: threading.Event, interval: float = CHECK_S, background_labels: tuple[str, ...] = (),
                 split_below: float = DEFAULT_SPLIT_BELOW, unknown_threshold: float = DEFAULT_UNKNOWN_THRESHOLD) -> None:
        super().__init__(name="gallery-watch", daemon=True)
        self._catalog_options = {"background_labels": background_labels, "split_below": split_below,
                                 "unknown_threshold": unknown_threshold}
        self._slot, self._path, self._labels, self._model_id = slot, gallery_path_for(bundle), labels, model_id
        self._stats, self._stop_event, self._interval = stats, stop, interval
        self._stamp: Optional[tuple[int, int]] = None
        if stats.outdated_keypoints:
            log.warning("bundle %s: its %d second-look references are of the format before 2026-12-07 (no keypoint "
                        "positions) and are not used; train it again with `streamrec finetune` to let the second "
                        "look tell its look-alikes apart", bundle, stats.outdated_keypoints)

    def load_now(self) -> OpenCatalog:
        """The catalog of the gallery as it is now (GalleryError when it is damaged or foreign)."""
        self._stamp = self._current_stamp()
        gallery = load_gallery(self._path, self._model_id) if self._stamp else Gallery(self._model_id,
                                                                                        self._stats.feature_dim)
        catalog = OpenCatalog(self._labels, self._stats, gallery, **self._catalog_options)
        self._slot.set_catalog(catalog)
        return catalog

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            if self._current_stamp() == self._stamp:
                continue
            try:
                catalog = self.load_now()
            except ModelError as exc:
                log.warning("%s; still recognizing with the gallery loaded before", exc)
                continue
            log.info("gallery %s: %d enrolled product(s) now recognized (%s)", self._path,
                     len(catalog.gallery.entries), ", ".join(catalog.gallery.labels) or "none")

    def _current_stamp(self) -> Optional[tuple[int, int]]:
        try:
            info = self._path.stat()
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size


def gallery_watcher(model: ModelConfig, slot: ModelSlot, stop: threading.Event,
                    background_labels: tuple[str, ...] = (), split_below: float = DEFAULT_SPLIT_BELOW
                    ) -> Optional[GalleryWatcher]:
    """For a bundle with feature statistics: the watcher, its catalog already in the slot (GalleryError when the
    gallery is damaged: exit 78). None for other models. `background_labels`: events.ignore_labels;
    `split_below`: events.min_score (frames below it get a second look)."""
    path = Path(model.spec.strip()).expanduser()
    if not path.is_file():
        return None
    bundle = load_bundle(path)
    if bundle.features is None:
        if gallery_path_for(path).exists():
            log.warning("%s has a gallery but no feature statistics (trained before enrolling existed): train it "
                        "again with `streamrec finetune` to recognize its enrolled products", path)
        return None
    watcher = GalleryWatcher(slot, path, bundle.labels, bundle.model_id, bundle.features, stop,
                             background_labels=background_labels, split_below=split_below,
                             unknown_threshold=model.unknown_threshold)
    catalog = watcher.load_now()
    if catalog.gallery.entries:
        log.info("gallery %s: %d enrolled product(s)", gallery_path_for(path), len(catalog.gallery.entries))
    return watcher
