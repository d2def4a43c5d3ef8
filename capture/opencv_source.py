"""A source backed by cv2.VideoCapture, shared by USB cameras, RTSP streams and video files."""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import cv2
import numpy as np

from capture.source import SourceError

log = logging.getLogger(__name__)


class OpenCVSource:
    """Opens `target` with one OpenCV backend and reads frames; end of file returns None."""

    def __init__(
        self,
        target: str | int,
        name: str,
        *,
        is_live: bool,
        api: int = cv2.CAP_ANY,
        params: Sequence[int] = (),
        settings: Sequence[tuple[int, float]] = (),
    ) -> None:
        self.name = name
        self.is_live = is_live
        self._target = target
        self._api = api
        self._params = list(params)
        self._settings = list(settings)
        self._capture: Optional[cv2.VideoCapture] = None

    def open(self) -> None:
        """Open the capture and apply settings; raise SourceError with the (masked) name if it fails."""
        self.close()
        capture = cv2.VideoCapture(self._target, self._api, self._params)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open {self.name}")
        for prop, value in self._settings:
            capture.set(prop, value)
        self._capture = capture

    def fps(self) -> Optional[float]:
        """The frame rate the backend reports, if plausible."""
        if self._capture is None:
            return None
        value = self._capture.get(cv2.CAP_PROP_FPS)
        return float(value) if 0 < value <= 1000 else None

    def read(self) -> Optional[np.ndarray]:
        """Next frame; None at the end of a file; SourceError when a live source stops delivering."""
        if self._capture is None:
            raise SourceError(f"{self.name} is not open")
        ok, image = self._capture.read()
        if ok and image is not None:
            return image
        if self.is_live:
            raise SourceError(f"{self.name} stopped delivering frames")
        return None

    def close(self) -> None:
        """Release the capture."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None
