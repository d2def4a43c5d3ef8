"""Live previews: each watched camera's annotated picture, encoded as JPEG once per tick and shared by every viewer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import cv2

from capture.status import CameraStatus
from stream.overlay.latest import LatestResults

WATCH_GRACE_S = 2.0
"""A camera stays watched this long after its last request, so a page that polls frame by frame keeps it encoded."""
REFRESH_S = 1.0
"""An unchanged camera is encoded again at least this often (its fps, latency and banner still change)."""
JPEG_QUALITY = 75

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreviewFrame:
    """One encoded preview; `number` grows by one per encode of that camera."""

    camera: str
    number: int
    jpeg: bytes


class PreviewHub:
    """Encodes the watched cameras at most `fps` times a second in `executor` (never per viewer) and wakes the viewers.

    Lives on the web server's event loop: `run()` is its ticker task, `next_frame()` what each viewer awaits.
    A viewer that reads slowly simply skips frames: it always gets the newest one."""

    def __init__(
        self,
        latest: LatestResults,
        statuses: Sequence[CameraStatus],
        fps: float,
        max_width: int,
        executor: Executor,
        on_encoded: Callable[[str], None] = lambda _camera: None,
    ) -> None:
        self._latest = latest
        self._statuses = {status.camera: status for status in statuses}
        self._interval = 1.0 / fps
        self._max_width = max_width
        self._executor = executor
        self._on_encoded = on_encoded
        self._frames: dict[str, PreviewFrame] = {}
        self._encoded_from: dict[str, tuple[object, float, int]] = {}
        """Per camera: the result last encoded, when, and its frame number (used by the executor side only)."""
        self._wanted_until: dict[str, float] = {}
        self._waiting: Counter[str] = Counter()
        self._new_frames = asyncio.Event()
        self._wake = asyncio.Event()
        self.streams = 0
        """Open MJPEG streams (the routes cap them)."""
        self.closed = False

    @property
    def cameras(self) -> list[str]:
        """The camera ids, in config order."""
        return list(self._statuses)

    async def run(self) -> None:
        """Encode the watched cameras once per tick; sleep while nobody watches. Ends on close()."""
        loop = asyncio.get_running_loop()
        while not self.closed:
            wanted = self._wanted(loop.time())
            if not wanted:
                self._wake.clear()
                await self._wake.wait()
                continue
            started = loop.time()
            try:
                frames = await loop.run_in_executor(self._executor, self._encode, wanted)
            except Exception:
                log.exception("encoding previews failed; trying again next tick")
                frames = {}
            self._frames.update(frames)
            if frames:
                woken, self._new_frames = self._new_frames, asyncio.Event()
                woken.set()
            await asyncio.sleep(max(0.0, self._interval - (loop.time() - started)))

    async def next_frame(self, camera: str, after: int, timeout: float) -> Optional[PreviewFrame]:
        """The newest frame of `camera` numbered above `after`, waiting up to `timeout`; None on timeout or close."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiting[camera] += 1
        try:
            while not self.closed:
                self._wanted_until[camera] = loop.time() + WATCH_GRACE_S
                self._wake.set()
                frame = self._frames.get(camera)
                if frame is not None and frame.number > after:
                    return frame
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                try:
                    await asyncio.wait_for(self._new_frames.wait(), remaining)
                except asyncio.TimeoutError:
                    return None
            return None
        finally:
            self._waiting[camera] -= 1

    def close(self) -> None:
        """Wake every viewer and the ticker for good (server shutdown)."""
        self.closed = True
        self._new_frames.set()
        self._wake.set()

    def _wanted(self, now: float) -> list[str]:
        return [camera for camera in self._statuses if self._waiting[camera] or self._wanted_until.get(camera, 0) > now]

    def _encode(self, cameras: list[str]) -> dict[str, PreviewFrame]:
        """Render and encode each camera whose picture changed (runs in the executor, one call at a time)."""
        now = time.monotonic()
        frames = {}
        for camera in cameras:
            result = self._latest.latest(camera)
            previous = self._encoded_from.get(camera)
            if previous is not None and previous[0] is result and now - previous[1] < REFRESH_S:
                continue
            picture = self._latest.render(self._statuses[camera], self._max_width)
            ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                continue
            number = (previous[2] if previous else 0) + 1
            self._encoded_from[camera] = (result, now, number)
            frames[camera] = PreviewFrame(camera, number, jpeg.tobytes())
            self._on_encoded(camera)
        return frames
