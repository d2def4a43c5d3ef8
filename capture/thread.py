"""One capture thread per camera: read continuously, stamp frames, queue them, tell stalls apart, reconnect on faults."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Callable, Optional

import numpy as np

from capture.backoff import Backoff
from capture.frame import Frame
from capture.image import BadFrame, as_bgr
from capture.pacer import Pacer
from capture.queue import FrameQueue
from capture.reader import ReaderStopped, SupervisedSource
from capture.source import FrameSource, SourceError
from capture.stall import FreezeDetector, worker_behind
from capture.status import CameraState, CameraStatus
from config.redact import redact
from config.schema import CameraConfig

log = logging.getLogger(__name__)

OPEN_GRACE_S = 2.0
"""Extra time for open() beyond open_timeout_s: FFmpeg's own open timeout (the same value) should fail it first."""
MAX_STUCK_READERS = 4
"""Abandoned readers still inside a camera call; beyond this no new one is started until one returns."""


class StreamFrozen(SourceError):
    """The camera keeps sending the same picture."""


class CaptureThread(threading.Thread):
    """Reads one camera until `stop` is set or a file ends; never dies on a camera fault, never hangs in one."""

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
        self._freeze = FreezeDetector()
        self._seq = 0
        self._readers = 0
        self._geometry: Optional[tuple[int, ...]] = None
        self._bad_frames = 0
        self._last_good_mono = 0.0
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
            if self._too_many_stuck_readers():
                self._wait_before_retry(frozen=False)
                continue
            source = self._supervise(self._make_source())
            opened = False
            try:
                source.open(self._camera.open_timeout_s + OPEN_GRACE_S)
                opened = True
                self._freeze.restart_clock(time.monotonic())
                if self._stream(source):
                    log.info("%s: end of %s", self._camera.id, source.name)
                    return
            except ReaderStopped:
                return
            except SourceError as exc:
                if self._stop_event.is_set():
                    return
                self._fault(str(exc))
                if opened:
                    self._status.connection_lost()
                self._wait_before_retry(frozen=isinstance(exc, StreamFrozen))
            finally:
                source.close()

    def _supervise(self, source: FrameSource) -> SupervisedSource:
        self._readers += 1
        return SupervisedSource(source, f"{self.name}-reader-{self._readers}", self._status, self._stop_event)

    def _stream(self, source: SupervisedSource) -> bool:
        """Deliver frames until stop (False) or the end of a file (True); raise SourceError on a fault."""
        pace = not source.is_live and self._camera.pace
        pacer = Pacer((source.fps() or self._camera.fps or 30.0) if pace else None)
        self._last_good_mono = time.monotonic()
        while not self._stop_event.is_set():
            image = source.read(self._camera.read_timeout_s)
            self._status.touch()
            if image is None:
                return True
            try:
                image = as_bgr(image)
            except BadFrame as exc:
                self._count_bad_frame(exc)
                continue
            self._last_good_mono = time.monotonic()
            self._deliver(image, source)
            pacer.wait(self._stop_event)
        return False

    def _deliver(self, image: np.ndarray, source: SupervisedSource) -> None:
        now = time.monotonic()
        changed = self._freeze.observe(image, now)
        state = self._status.state
        if state in (CameraState.CONNECTING, CameraState.RECONNECTING):
            state = self._now_streaming(f"streaming {source.name} ({image.shape[1]}x{image.shape[0]})")
        elif state is CameraState.FROZEN and changed:
            state = self._now_streaming("the picture moves again; streaming")
        self._check_geometry(image)
        frozen_after = self._camera.frozen_after_s
        if frozen_after and source.is_live and self._freeze.still_for(now) >= frozen_after:
            self._status.set_state(CameraState.FROZEN)
            raise StreamFrozen(f"frozen: {source.name} sent the same picture for {frozen_after:.1f} s; reconnecting")
        self._status.frame_captured(now)
        if state is CameraState.FROZEN:
            return  # a picture known to be stale is not worth classifying; heartbeats say why results stopped
        self._seq += 1
        self._queue.put(Frame(self._camera.id, self._seq, time.time(), now, image), self._stop_event)
        self._check_blocked(state)

    def _now_streaming(self, event: str) -> CameraState:
        self._status.set_state(CameraState.STREAMING)
        self._status.set_error(None)
        self._backoff.reset()
        log.info("%s: %s", self._camera.id, event)
        return CameraState.STREAMING

    def _check_geometry(self, image: np.ndarray) -> None:
        if image.shape == self._geometry:
            return
        if self._geometry is not None:
            (old_h, old_w), (new_h, new_w) = self._geometry[:2], image.shape[:2]
            log.warning("%s: frame size changed from %dx%d to %dx%d", self._camera.id, old_w, old_h, new_w, new_h)
        self._geometry = image.shape

    def _check_blocked(self, state: CameraState) -> None:
        if state not in (CameraState.STREAMING, CameraState.BLOCKED):
            return
        after = self._camera.blocked_after_s
        blocked = worker_behind(state is CameraState.BLOCKED, self._queue.overflow_age(), self._queue.take_interval, after)
        if blocked and state is CameraState.STREAMING:
            self._status.set_state(CameraState.BLOCKED)
            log.warning("%s: blocked: the recognizer took no frame from this camera for %.1f s while it delivers "
                        "(frames are dropped); not reconnecting", self._camera.id, after)
        elif not blocked and state is CameraState.BLOCKED:
            self._status.set_state(CameraState.STREAMING)
            log.info("%s: the recognizer caught up; streaming", self._camera.id)

    def _count_bad_frame(self, exc: BadFrame) -> None:
        self._bad_frames += 1
        if self._bad_frames == 1 or self._bad_frames % 1000 == 0:
            log.warning("%s: skipped %d unusable frame(s): %s", self._camera.id, self._bad_frames, exc)
        if time.monotonic() - self._last_good_mono >= self._camera.read_timeout_s:
            raise SourceError(f"no usable frame for {self._camera.read_timeout_s:.1f} s (last problem: {exc})")

    def _too_many_stuck_readers(self) -> bool:
        stuck = self._status.stuck_readers
        if stuck < MAX_STUCK_READERS:
            return False
        self._fault(f"{stuck} readers are still stuck in camera calls; not opening another until one returns "
                    "(if this persists, the camera driver is wedged: replug the camera or restart the service)")
        return True

    def _fault(self, message: str) -> None:
        message = redact(message)
        self._status.set_error(message)
        log.warning("%s: %s", self._camera.id, message)

    def _wait_before_retry(self, frozen: bool) -> None:
        if self._stop_event.is_set():
            return
        if self._status.state is not CameraState.CONNECTING and not frozen:
            self._status.set_state(CameraState.RECONNECTING)
        delay = self._backoff.next_delay()
        log.info("%s: retrying in %.1f s", self._camera.id, delay)
        deadline = time.monotonic() + delay
        while not self._stop_event.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
            self._status.touch()
            if time.monotonic() >= deadline:
                return
