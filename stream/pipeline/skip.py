"""Skip what has not changed: reuse a camera's last result while its picture stays the same."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterable, Optional

import cv2
import numpy as np

from capture.frame import Frame
from config.schema import AppConfig, SkipConfig
from config.sources import SourceKind
from stream.pipeline.result import Result

THUMBNAIL_SIZE = (32, 24)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A tiny grey copy of the picture, cheap to compare (area filter, so noise averages out)."""
    small = cv2.resize(image, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)


@dataclass
class _Last:
    thumbnail: np.ndarray
    result: Result
    reused: int = 0


class ChangeDetector:
    """Per camera: the last classified picture's thumbnail and result; reuse while the difference stays small."""

    def __init__(self, config: SkipConfig, cameras: Iterable[str]) -> None:
        self._threshold = config.threshold
        self._max_reuse = config.max_reuse
        self._cameras = set(cameras)
        self._last: dict[str, _Last] = {}
        self._lock = threading.Lock()  # reuse() runs on the preprocessing thread, remember() on the inference thread

    @classmethod
    def from_config(cls, config: AppConfig) -> "ChangeDetector":
        """Enabled for the cameras `skip.enabled` selects (auto: live cameras only)."""
        mode = config.skip.enabled
        live = (SourceKind.USB, SourceKind.RTSP)
        cameras = [c.id for c in config.cameras if mode == "on" or (mode == "auto" and c.spec.kind in live)]
        return cls(config.skip, cameras)

    @property
    def active(self) -> bool:
        """True when any camera may reuse results."""
        return bool(self._cameras)

    def reuse(self, frame: Frame, model_id: Optional[str] = None) -> tuple[Optional[Result], Optional[np.ndarray]]:
        """(a reused Result, None) when the frame is unchanged (and the last result came from `model_id`, when
        given: a swapped-in model classifies afresh); else (None, its thumbnail to remember)."""
        if frame.camera not in self._cameras:
            return None, None
        thumb = thumbnail(frame.image)
        with self._lock:
            last = self._last.get(frame.camera)
            if (last is None or last.reused >= self._max_reuse or last.thumbnail.shape != thumb.shape
                    or (model_id is not None and last.result.model != model_id)
                    or float(np.abs(thumb - last.thumbnail).mean()) > self._threshold):
                return None, thumb
            last.reused += 1
            topk, model = last.result.topk, last.result.model
        return Result(frame, topk, model, time.monotonic(), reused=True), None

    def remember(self, result: Result, thumb: Optional[np.ndarray]) -> None:
        """Keep a freshly classified result as the reference for the camera's next frames."""
        if thumb is not None:
            with self._lock:
                self._last[result.camera] = _Last(thumb, result)
