"""One capture thread per camera: read continuously, stamp frames, queue them, reconnect on faults."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Callable, Optional

from capture.backoff import Backoff
from capture.frame import Frame
from capture.image import BadFrame, as_bgr
from capture.pacer import Pacer
from capture.queue import FrameQueue
from capture.source import FrameSource, SourceError
from capture.status import CameraState, CameraStatus
from config.redact import redact
from config.schema import CameraConfig

log = logging.getLogger(__name__)


class CaptureThread(threading.Thread):
    """Reads one camera until `stop` is set or a file ends; never dies on a camera fault."""

    def __init__(
        self,
        camera: CameraConfig,
        make_source: Callable[[], FrameSource],
        queue: FrameQueue,
        status: CameraStatus,
        stop: threading.Event,
        rng: Optional[random.Random] = None,
    ) -> None:
        super().__init__(name=f"capture-{camera.id}", daemon=True)
        self._camera = camera
        self._make_source = make_source
        self._queue = queue
        self._status = status
        self._stop_event = stop
        self._backoff = Backoff(camera.reconnect_initial_s, camera.reconnect_max_s, rng)
        self._seq = 0
        self._geometry: Optional[tuple[int, ...]] = None
        self._bad_frames = 0
        self.failed = False
        """True when the thread ended on an unexpected error (health checks report it)."""

    def run(self) -> None:
        try:
            self._read_until_stopped()
        except Exception as exc:  # a bug, not a camera fault: report it instead of dying silently
            self.failed = True
            log.exception("%s: capture thread failed", self._camera.id)
            self._status.set_error(redact(f"capture thread failed: {exc}"))
        finally:
            self._status.set_state(CameraState.STOPPED)
            self._queue.close()

    def _read_until_stopped(self) -> None:
        while not self._stop_event.is_set():
            self._status.touch()
            source = self._make_source()
            try:
                source.open()
                if self._stream(source):
                    log.info("%s: end of %s", self._camera.id, source.name)
                    return
            except SourceError as exc:
                self._fault(str(exc))
            finally:
                source.close()
            self._wait_before_retry()

    def _stream(self, source: FrameSource) -> bool:
        """Deliver frames until stop (False) or the end of a file (True)."""
        pace = not source.is_live and self._camera.pace
        pacer = Pacer((source.fps() or self._camera.fps or 30.0) if pace else None)
        while not self._stop_event.is_set():
            image = source.read()
            self._status.touch()
            if image is None:
                return True
            try:
                image = as_bgr(image)
            except BadFrame as exc:
                self._count_bad_frame(exc)
                continue
            self._deliver(image, source)
            pacer.wait(self._stop_event)
        return False

    def _deliver(self, image, source: FrameSource) -> None:
        now = time.monotonic()
        if self._status.state is not CameraState.STREAMING:
            self._started_streaming(image, source)
        self._seq += 1
        frame = Frame(self._camera.id, self._seq, time.time(), now, image)
        self._queue.put(frame, self._stop_event)
        self._status.frame_captured(now)

    def _started_streaming(self, image, source: FrameSource) -> None:
        self._status.set_state(CameraState.STREAMING)
        self._status.set_error(None)
        self._backoff.reset()
        if self._geometry is not None and image.shape != self._geometry:
            log.warning("%s: frame size changed from %s to %s", self._camera.id, self._geometry, image.shape)
        self._geometry = image.shape
        log.info("%s: streaming %s (%dx%d)", self._camera.id, source.name, image.shape[1], image.shape[0])

    def _count_bad_frame(self, exc: BadFrame) -> None:
        self._bad_frames += 1
        if self._bad_frames == 1 or self._bad_frames % 1000 == 0:
            log.warning("%s: skipped %d unusable frame(s): %s", self._camera.id, self._bad_frames, exc)

    def _fault(self, message: str) -> None:
        message = redact(message)
        self._status.set_error(message)
        log.warning("%s: %s", self._camera.id, message)

    def _wait_before_retry(self) -> None:
        if self._stop_event.is_set():
            return
        if self._status.state is not CameraState.CONNECTING:
            self._status.set_state(CameraState.RECONNECTING)
        delay = self._backoff.next_delay()
        log.info("%s: retrying in %.1f s", self._camera.id, delay)
        deadline = time.monotonic() + delay
        while not self._stop_event.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
            self._status.touch()
            if time.monotonic() >= deadline:
                return
