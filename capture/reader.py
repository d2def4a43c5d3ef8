"""Run a source's blocking calls in a reader thread of its own, so a wedged camera driver cannot hang capture.

OpenCV's FFmpeg and V4L2 backends can block in open() or read() for a long time or forever when a
camera dies (its own read timeout fires, measured here, only after about three times the configured
value). The capture thread therefore hands every call to a small daemon reader thread and waits with a
deadline. A call that overruns it is abandoned with its reader: a thread cannot be killed, so it is left
to finish on its own; when its call returns it releases the camera and ends. The capture thread opens a
fresh source with a fresh reader meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional, TypeVar

import numpy as np

from capture.source import FrameSource, SourceError
from capture.status import CameraStatus

log = logging.getLogger(__name__)

T = TypeVar("T")
TICK_S = 0.5
"""How often a waiting capture thread shows it is alive and checks for stop."""
CLOSE_WAIT_S = 0.5
"""How long closing waits for a healthy reader to release its camera before leaving it behind."""


class ReaderTimeout(SourceError):
    """A camera call overran its deadline; its reader was abandoned."""


class ReaderStopped(SourceError):
    """Stop was requested while a camera call was still running."""


class _Call:
    """One call handed to the reader thread, and its outcome."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: object = None
        self.error: Optional[BaseException] = None


class _ReaderThread(threading.Thread):
    """Owns one source: runs the calls it is handed, one at a time, and closes the source when it ends."""

    def __init__(self, source: FrameSource, name: str, status: CameraStatus) -> None:
        super().__init__(name=name, daemon=True)  # daemon: a reader stuck in a driver must not block exit
        self._source = source
        self._status = status
        self._wake = threading.Condition()
        self._pending: Optional[_Call] = None
        self._closing = False
        self._abandoned_at: Optional[float] = None

    def hand(self, call: _Call) -> None:
        with self._wake:
            self._pending = call
            self._wake.notify()

    def finish(self) -> None:
        """Ask the thread to close its source and end once it is idle."""
        with self._wake:
            self._closing = True
            self._wake.notify()

    def abandon(self) -> None:
        """Leave the thread behind: it closes the source and ends as soon as its current call returns."""
        with self._wake:
            self._abandoned_at = time.monotonic()
            self._closing = True
            self._wake.notify()

    def run(self) -> None:
        try:
            while (call := self._next_call()) is not None:
                try:
                    call.result = call.fn()
                except BaseException as exc:  # handed back to the capture thread, which decides
                    call.error = exc
                with self._wake:
                    self._pending = None
                call.done.set()
        finally:
            self._close_source()

    def _next_call(self) -> Optional[_Call]:
        with self._wake:
            while self._pending is None and not self._closing:
                self._wake.wait(TICK_S * 4)
            return None if self._closing else self._pending

    def _close_source(self) -> None:
        try:
            self._source.close()
        except Exception:
            log.exception("%s: closing %s failed", self.name, self._source.name)
        with self._wake:
            abandoned_at = self._abandoned_at
        if abandoned_at is not None:
            self._status.reader_returned()
            log.info("%s: abandoned reader returned after %.1f s and released %s",
                     self.name, time.monotonic() - abandoned_at, self._source.name)


class SupervisedSource:
    """A source whose open() and read() run in its own reader thread and give up after a deadline.

    One instance per connection attempt: after a timeout it is spent, and the caller opens a new one.
    """

    def __init__(self, source: FrameSource, reader_name: str, status: CameraStatus, stop: threading.Event) -> None:
        self.name = source.name
        self.is_live = source.is_live
        self._status = status
        self._stop = stop
        self._fps: Optional[float] = None
        self._thread = _ReaderThread(source, reader_name, status)
        self._source = source
        self._spent = False

    def open(self, timeout_s: float) -> None:
        """Open the source (and learn its fps) within `timeout_s`."""
        self._thread.start()
        self._fps = self._call(self._open_and_probe, timeout_s, "opening")

    def _open_and_probe(self) -> Optional[float]:
        self._source.open()
        return self._source.fps()

    def fps(self) -> Optional[float]:
        """The frame rate the source reported when it opened."""
        return self._fps

    def read(self, timeout_s: float) -> Optional[np.ndarray]:
        """The next image (None at the end of a file) within `timeout_s`."""
        return self._call(self._source.read, timeout_s, "reading")

    def close(self) -> None:
        """Release the source in its reader thread; leave a reader that does not finish in time behind."""
        if not self._thread.is_alive():
            return
        self._thread.finish()
        if not self._spent:
            self._thread.join(CLOSE_WAIT_S)
            if self._thread.is_alive():
                self._abandon(f"closing {self.name} took longer than {CLOSE_WAIT_S:.1f} s")

    def _call(self, fn: Callable[[], T], timeout_s: float, doing: str) -> T:
        if self._spent:
            raise SourceError(f"{self.name}: reader was abandoned; open a new source")
        call = _Call(fn)
        self._thread.hand(call)
        deadline = time.monotonic() + timeout_s
        while not call.done.wait(max(0.0, min(TICK_S, deadline - time.monotonic()))):
            self._status.touch()
            if self._stop.is_set():
                self._abandon(f"stop requested while {doing} {self.name}", quietly=True)
                raise ReaderStopped(f"stopped while {doing} {self.name}")
            if time.monotonic() >= deadline:
                self._abandon(f"{doing} {self.name} took longer than {timeout_s:g} s")
                raise ReaderTimeout(f"{doing} {self.name} took longer than {timeout_s:g} s; gave up on it")
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def _abandon(self, why: str, quietly: bool = False) -> None:
        self._spent = True
        self._thread.abandon()
        self._status.reader_abandoned()
        stuck = self._status.stuck_readers
        (log.debug if quietly else log.warning)(
            "%s: abandoned reader %s (%s); %d reader(s) still stuck in camera calls",
            self._status.camera, self._thread.name, why, stuck,
        )
