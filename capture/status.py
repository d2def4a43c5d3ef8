"""Per-camera state and counters, written by the capture thread and read by heartbeats."""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Optional


class CameraState(str, enum.Enum):
    """What a camera is doing, as heartbeats report it."""

    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    FROZEN = "frozen"
    BLOCKED = "blocked"
    STOPPED = "stopped"


DELIVERING = frozenset({CameraState.STREAMING, CameraState.FROZEN, CameraState.BLOCKED})
"""States in which frames arrive from the camera (frozen: identical ones; blocked: faster than the worker takes them)."""


class RateMeter:
    """Events per second over a short sliding window."""

    def __init__(self, window_s: float = 2.0, capacity: int = 256) -> None:
        self._window_s = window_s
        self._times: deque[float] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def tick(self, now: Optional[float] = None) -> None:
        """Record one event."""
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: Optional[float] = None) -> float:
        """Events per second within the window ending now (0 when too few)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._times if now - t <= self._window_s]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], recent[-1] - recent[0])
        return (len(recent) - 1) / span if span > 0 else 0.0


@dataclass(frozen=True)
class CameraSnapshot:
    """A consistent copy of one camera's status."""

    camera: str
    source: str
    state: CameraState
    captured: int
    dropped: int
    reconnects: int
    fps: float
    last_error: Optional[str]
    last_frame_age_s: Optional[float]
    abandoned_readers: int = 0
    """Reader threads given up on because a camera call overran its deadline (since start)."""
    stuck_readers: int = 0
    """Of those, the ones still inside the camera call (each holds a thread until the driver returns)."""


class CameraStatus:
    """Mutable status of one camera; every method is thread-safe."""

    def __init__(self, camera: str, source: str) -> None:
        self.camera = camera
        self.source = source
        self._lock = threading.Lock()
        self._state = CameraState.CONNECTING
        self._captured = 0
        self._dropped = 0
        self._reconnects = 0
        self._abandoned_readers = 0
        self._stuck_readers = 0
        self._last_error: Optional[str] = None
        self._last_frame_mono: Optional[float] = None
        self._last_activity = time.monotonic()
        self._rate = RateMeter()

    @property
    def state(self) -> CameraState:
        """The current state."""
        return self._state

    def set_state(self, state: CameraState) -> CameraState:
        """Change the state and return the previous one."""
        self.touch()
        with self._lock:
            previous, self._state = self._state, state
            return previous

    def connection_lost(self) -> None:
        """Count one reconnect: a camera that had opened failed, went silent or froze."""
        with self._lock:
            self._reconnects += 1

    def reader_abandoned(self) -> None:
        """A reader thread overran its deadline and was left behind."""
        with self._lock:
            self._abandoned_readers += 1
            self._stuck_readers += 1

    def reader_returned(self) -> None:
        """An abandoned reader's camera call finally returned; it released the camera and ended."""
        with self._lock:
            self._stuck_readers -= 1

    @property
    def stuck_readers(self) -> int:
        """Abandoned readers still inside a camera call."""
        with self._lock:
            return self._stuck_readers

    def frame_captured(self, now: float) -> None:
        """Count one delivered frame."""
        self._last_activity = now
        self._rate.tick(now)
        with self._lock:
            self._captured += 1
            self._last_frame_mono = now

    def touch(self, now: Optional[float] = None) -> None:
        """The capture thread is alive and going round its loop (reading, opening, or waiting to retry)."""
        self._last_activity = time.monotonic() if now is None else now

    def activity_age(self, now: Optional[float] = None) -> float:
        """Seconds since the capture thread last showed it is not stuck."""
        return (time.monotonic() if now is None else now) - self._last_activity

    def frame_dropped(self, count: int = 1) -> None:
        """Count frames dropped from a full queue."""
        with self._lock:
            self._dropped += count

    def set_error(self, message: Optional[str]) -> None:
        """Remember the last fault (already redacted), or clear it."""
        with self._lock:
            self._last_error = message

    def snapshot(self, now: Optional[float] = None) -> CameraSnapshot:
        """A consistent copy for heartbeats and status lines."""
        now = time.monotonic() if now is None else now
        with self._lock:
            age = None if self._last_frame_mono is None else now - self._last_frame_mono
            return CameraSnapshot(
                camera=self.camera,
                source=self.source,
                state=self._state,
                captured=self._captured,
                dropped=self._dropped,
                reconnects=self._reconnects,
                fps=self._rate.rate(now) if self._state in DELIVERING else 0.0,
                last_error=self._last_error,
                last_frame_age_s=age,
                abandoned_readers=self._abandoned_readers,
                stuck_readers=self._stuck_readers,
            )
