"""Read video files as a camera, optionally looping."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from capture.opencv_source import OpenCVSource
from capture.source import SourceError
from config.schema import CameraConfig

log = logging.getLogger(__name__)

MAX_UNDECODABLE_IN_A_ROW = 25
"""A read that fails is retried this often before the file counts as ended: FFmpeg skips a corrupt frame."""


class VideoFileSource:
    """A video file; at its end it ends the stream, or starts again when `loop` is set."""

    is_live = False

    def __init__(self, path: str, loop: bool = False) -> None:
        self._path = str(Path(path).expanduser())
        self.name = f"file:{self._path}"
        self._loop = loop
        self._reader = OpenCVSource(self._path, self.name, is_live=False)
        self._frames_this_pass = 0
        self.skipped = 0
        """Frames that could not be decoded (corrupt parts of the file)."""

    def open(self) -> None:
        """Open the file; a missing or unreadable file raises SourceError."""
        if not Path(self._path).is_file():
            raise SourceError(f"{self.name}: no such file")
        self._reader.open()
        self._frames_this_pass = 0

    def fps(self) -> Optional[float]:
        """The file's frame rate."""
        return self._reader.fps()

    def read(self) -> Optional[np.ndarray]:
        """Next frame; at the end, None, or the first frame again when looping."""
        image = self._read_past_corrupt_frames()
        if image is None and self._loop and self._frames_this_pass > 0:
            self.open()
            image = self._read_past_corrupt_frames()
        if image is None and self._frames_this_pass == 0:
            raise SourceError(f"{self.name}: no decodable frames (corrupt or not a video?)")
        self._frames_this_pass += 1
        return image

    def _read_past_corrupt_frames(self) -> Optional[np.ndarray]:
        for failed in range(MAX_UNDECODABLE_IN_A_ROW + 1):
            image = self._reader.read()
            if image is not None:
                if failed:
                    self._skipped(failed)
                return image
        return None

    def _skipped(self, count: int) -> None:
        before, self.skipped = self.skipped, self.skipped + count
        if before == 0 or before // 100 != self.skipped // 100:
            log.warning("%s: skipped %d undecodable frame(s) so far (corrupt file?)", self.name, self.skipped)

    def close(self) -> None:
        """Close the file."""
        self._reader.close()


def video_file_source(camera: CameraConfig) -> VideoFileSource:
    """The file source a camera config names."""
    return VideoFileSource(camera.spec.target, loop=camera.loop)
