"""Record a product held in front of a camera for `streamrec enroll --source SPEC --seconds N`."""

from __future__ import annotations

import time
from typing import Optional, TextIO

import numpy as np

from capture.factory import SourceFactory
from capture.pacer import Pacer
from capture.source import FrameSource, SourceError
from config.loader import validate
from inference.enrollment import EnrollmentError
from stream.tools.progress import ProgressBar

OPEN_TIMEOUT_S = 10.0


def open_camera(spec: str, factory: Optional[SourceFactory] = None) -> FrameSource:
    """The source for `spec`, opened (EnrollmentError saying why when it cannot be)."""
    try:
        camera = validate({"cameras": [{"id": "enroll", "source": spec}]}, origin="--source").cameras[0]
    except Exception as exc:
        raise EnrollmentError(f"--source {spec!r}: {exc}") from None
    source = (factory or SourceFactory())(camera)
    try:
        source.open()
    except SourceError as exc:
        raise EnrollmentError(f"cannot open the camera: {exc}") from None
    return source


def record(spec: str, seconds: float, err: TextIO, max_views: int,
           factory: Optional[SourceFactory] = None) -> list[np.ndarray]:
    """Frames of `seconds` of the camera (paced at its rate when it is not live), at most `max_views` of them,
    evenly spread; a progress bar while it records."""
    source = open_camera(spec, factory)
    pacer = Pacer(None if source.is_live else (source.fps() or 30.0))
    frames: list[np.ndarray] = []
    bar = ProgressBar(f"recording {seconds:.0f} s: turn the product slowly", max(1, int(seconds * 10)), err)
    started = time.monotonic()
    never = _Never()
    try:
        while time.monotonic() - started < seconds:
            image = source.read()
            if image is None:
                break
            frames.append(image)
            bar.update(int((time.monotonic() - started) * 10))
            pacer.wait(never)
    except SourceError as exc:
        raise EnrollmentError(f"the camera failed while recording: {exc}") from None
    finally:
        source.close()
    bar.close(f"{len(frames)} frames")
    step = max(1, int(np.ceil(len(frames) / max_views)))
    return frames[::step]


class _Never:
    """A stop event that is never set (recording ends by its own clock)."""

    def wait(self, timeout: float) -> bool:
        time.sleep(timeout)
        return False
