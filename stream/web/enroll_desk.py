"""The web page's "Add product": record a camera for a few seconds, check the views, show how the product will be
recognized, and save it to the bundle's gallery on confirmation (the running service picks it up by itself).

One session at a time; its thread records, then checks, and stops on cancel or service stop.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from inference.bundle import load_bundle
from inference.enrollment import MAX_CAMERA_VIEWS, Enroller, EnrollmentError, ViewTally
from inference.enrollment_steps import checked_label, current_gallery, preview_of, with_look_alike
from inference.errors import ModelError
from inference.gallery import GalleryEntry, gallery_path_for, save_gallery

SAMPLE_INTERVAL_S = 1 / 30
MAX_SECONDS = 30.0
EMPTY_LABELS = ("empty",)

log = logging.getLogger(__name__)

FrameOf = Callable[[str], Optional[tuple[int, np.ndarray]]]
"""(frame number, BGR image) of a camera's newest frame, or None."""


class DeskBusy(Exception):
    """Another product is being recorded or waits for confirmation."""


@dataclass
class EnrollSession:
    """One "Add product" from record to save; `document()` is what the page shows."""

    camera: str
    label: str
    seconds: float
    state: str = "recording"
    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    tally: ViewTally = field(default_factory=ViewTally)
    entry: Optional[GalleryEntry] = None
    preview: Optional[str] = None
    warning: Optional[str] = None
    """Set when the product is a look-alike of a known one (EnrollPreview.warning)."""
    error: Optional[str] = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def open(self) -> bool:
        return self.state in ("recording", "checking", "ready")

    def document(self) -> dict[str, Any]:
        elapsed = min(self.seconds, time.monotonic() - self.started)
        return {"state": self.state, "camera": self.camera, "label": self.label, "seconds": self.seconds,
                "elapsed_s": round(elapsed, 1), "frames": self.frames, "kept": self.tally.kept,
                "views": self.tally.line() if self.state not in ("recording", "checking") else None,
                "preview": self.preview, "warning": self.warning, "error": self.error}


class EnrollDesk:
    """Enrollment for the running bundle, from its cameras' frames."""

    def __init__(self, bundle_path: Path, frame_of: FrameOf, stop: threading.Event) -> None:
        self.bundle_path = Path(bundle_path)
        self._frame_of, self._stop = frame_of, stop
        self._lock, self._load_lock = threading.Lock(), threading.Lock()
        self._session: Optional[EnrollSession] = None
        self._model: Optional[tuple[Any, Enroller]] = None

    def start(self, camera: str, label: str, seconds: float) -> dict[str, Any]:
        """Begin recording `camera` (EnrollmentError for a bad name or length, DeskBusy when one is open; ModelError
        when the bundle cannot be read). Blocks while the bundle loads the first time: call it off the event loop."""
        if not 1.0 <= seconds <= MAX_SECONDS:
            raise EnrollmentError(f"record for 1 to {MAX_SECONDS:.0f} seconds")
        bundle, _enroller = self._loaded()
        session = EnrollSession(camera, checked_label(label, bundle, self.bundle_path.name, "type its name"), seconds)
        with self._lock:
            if self._session is not None and self._session.open:
                raise DeskBusy(f"{self._session.label!r} is being added on {self._session.camera}; save or cancel it first")
            self._session = session
        threading.Thread(target=self._record_and_check, args=(session,), name="web-enroll", daemon=True).start()
        return session.document()

    def document(self) -> dict[str, Any]:
        """The current (or last) session, or `{"state": "idle"}`."""
        session = self._session
        return session.document() if session else {"state": "idle"}

    def confirm(self) -> dict[str, Any]:
        """Save the checked product to the gallery (EnrollmentError unless a session is ready)."""
        with self._lock:
            session = self._session
            if session is None or session.state != "ready" or session.entry is None:
                raise EnrollmentError("nothing to save: record the product first and wait for its check")
            bundle, _enroller = self._loaded()
            path = gallery_path_for(self.bundle_path)
            gallery = current_gallery(bundle, path).with_entry(session.entry)
            save_gallery(gallery, path)
            session.state = "saved"
        return {**session.document(), "gallery": len(gallery.entries)}

    def cancel(self) -> dict[str, Any]:
        """Drop the open session, if any."""
        with self._lock:
            session = self._session
            if session is not None and session.open:
                session.cancelled.set()
                session.state = "cancelled"
        return self.document()

    def _loaded(self):
        with self._load_lock:
            if self._model is None:
                bundle = load_bundle(self.bundle_path)
                self._model = (bundle, Enroller(bundle.to_classifier(self.bundle_path), bundle.features, EMPTY_LABELS))
            return self._model

    def _record_and_check(self, session: EnrollSession) -> None:
        views = self._record(session)
        if session.cancelled.is_set() or self._stop.is_set():
            return
        session.state = "checking"
        try:
            self._check(session, views)
        except (EnrollmentError, ModelError) as exc:
            session.error, session.state = str(exc), "failed"
        except Exception as exc:  # a surprise must still end the session, or the page waits and the desk stays busy
            log.exception("checking the views of %r failed", session.label)
            session.error, session.state = f"checking the views failed ({exc}); see the service log", "failed"

    def _record(self, session: EnrollSession) -> list[np.ndarray]:
        views, last = [], None
        while time.monotonic() - session.started < session.seconds:
            if session.cancelled.wait(SAMPLE_INTERVAL_S) or self._stop.is_set():
                break
            newest = self._frame_of(session.camera)
            if newest is not None and newest[0] != last and len(views) < MAX_CAMERA_VIEWS:
                last = newest[0]
                views.append(newest[1])
                session.frames = len(views)
        return views

    def _check(self, session: EnrollSession, views: list[np.ndarray]) -> None:
        if not views:
            raise EnrollmentError(f"no frames from {session.camera} in {session.seconds:.0f} s: is the camera streaming?")
        bundle, enroller = self._loaded()
        kept = enroller.keep(views, session.tally)
        entry = enroller.entry(session.label, kept, f"web:{session.camera}", session.tally, views)
        trial = current_gallery(bundle, gallery_path_for(self.bundle_path)).with_entry(entry)
        preview = preview_of(bundle, trial, enroller, views, session.label)
        session.entry, session.preview = with_look_alike(entry, preview), preview.line() if preview else None
        session.warning = preview.warning() if preview else None
        if not session.cancelled.is_set():
            session.state = "ready"
