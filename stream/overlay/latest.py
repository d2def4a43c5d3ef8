"""Each camera's newest result, drawn with the overlay: what the kiosk window and the web preview show."""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from capture.status import CameraStatus
from stream.overlay.drawing import OverlayInfo, banner_for, draw_overlay
from stream.pipeline.result import Result

PLACEHOLDER_SIZE = (480, 640, 3)


class LatestResults:
    """A result sink that keeps only the newest result per camera and renders it on demand."""

    def __init__(
        self,
        statuses: Sequence[CameraStatus],
        current_item: Callable[[str], Optional[str]],
        stale_after_s: float,
    ) -> None:
        self._statuses = list(statuses)
        self._current_item = current_item
        self._stale_after_s = stale_after_s
        self._latest: dict[str, Result] = {}
        self._lock = threading.Lock()

    def submit(self, results: Sequence[Result]) -> None:
        """Remember the newest result per camera (older ones are simply replaced)."""
        with self._lock:
            for result in results:
                self._latest[result.camera] = result

    def latest(self, camera: str) -> Optional[Result]:
        """The newest result of `camera`, or None before its first."""
        with self._lock:
            return self._latest.get(camera)

    def render(self, status: CameraStatus, max_width: Optional[int] = None) -> np.ndarray:
        """The annotated picture of one camera (a dark placeholder before its first result), at most `max_width` wide."""
        result = self.latest(status.camera)
        snap = status.snapshot()
        age = None if result is None else time.monotonic() - result.frame.captured_mono
        info = OverlayInfo(
            camera=status.camera,
            topk=result.topk if result else (),
            fps=snap.fps,
            latency_ms=None if result is None else (result.classified_mono - result.frame.captured_mono) * 1000,
            item=self._current_item(status.camera),
            banner=banner_for(snap.state.value, age, self._stale_after_s),
        )
        image = result.frame.image if result else np.zeros(PLACEHOLDER_SIZE, np.uint8)
        if max_width is not None and image.shape[1] > max_width:
            height = max(1, round(image.shape[0] * max_width / image.shape[1]))
            image = cv2.resize(image, (max_width, height), interpolation=cv2.INTER_AREA)
        return draw_overlay(image, info)
