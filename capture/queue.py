"""Bounded per-camera frame queues that one worker drains together, fairly and in batches."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Optional

from capture.frame import Frame
from config.schema import DropPolicy

RECENT_SOURCE_S = 1.0
"""A camera that delivered within this long is expected to deliver again soon."""


class FrameQueue:
    """One camera's bounded queue; the producer side used by its capture thread."""

    def __init__(
        self,
        camera: str,
        maxsize: int,
        policy: DropPolicy,
        condition: threading.Condition,
        on_drop: Optional[Callable[[int], None]] = None,
        is_source: bool = True,
    ) -> None:
        if policy is DropPolicy.AUTO:
            raise ValueError("resolve drop policy 'auto' before building a queue")
        self.camera = camera
        self.maxsize = maxsize
        self.policy = policy
        self._condition = condition
        self._frames: deque[Frame] = deque()
        self._on_drop = on_drop
        self._closed = False
        self.is_source = is_source
        """False for queues that never end a run (uploads): only sources decide when every source has ended."""
        self.dropped = 0
        self.last_put_mono: Optional[float] = None
        self._overflow_since: Optional[float] = None
        self._last_take_mono: Optional[float] = None
        self._take_interval: Optional[float] = None

    def put(self, frame: Frame, stop: threading.Event) -> None:
        """Queue a frame: drop the oldest when full, or wait for room under BLOCK (until stop)."""
        with self._condition:
            if self.policy is DropPolicy.BLOCK:
                while len(self._frames) >= self.maxsize and not stop.is_set():
                    self._condition.wait(0.1)
                if stop.is_set():
                    return
            elif len(self._frames) >= self.maxsize:
                self._frames.popleft()
                self.dropped += 1
                if self._overflow_since is None:
                    self._overflow_since = time.monotonic()
                if self._on_drop:
                    self._on_drop(1)
            self._frames.append(frame)
            self.last_put_mono = time.monotonic()
            self._condition.notify_all()

    def close(self) -> None:
        """Mark the end of this camera's stream; frames already queued are still delivered."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        """True once the producer has ended."""
        return self._closed

    def overflow_age(self, now: Optional[float] = None) -> float:
        """Seconds this queue has been overflowing without the worker taking a frame (0 when it is not)."""
        with self._condition:
            since = self._overflow_since
        return 0.0 if since is None else (time.monotonic() if now is None else now) - since

    @property
    def take_interval(self) -> Optional[float]:
        """Seconds between the worker's last two takes from this queue (None before the second)."""
        return self._take_interval

    def __len__(self) -> int:
        return len(self._frames)

    def _pop(self) -> Optional[Frame]:
        if not self._frames:
            return None
        now = time.monotonic()
        if self._last_take_mono is not None:
            self._take_interval = now - self._last_take_mono
        self._last_take_mono = now
        self._overflow_since = None
        return self._frames.popleft()


class FrameQueueSet:
    """All cameras' queues behind one condition, so the worker can wait on any of them."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queues: list[FrameQueue] = []
        self._next = 0

    def add(
        self, camera: str, maxsize: int, policy: DropPolicy, on_drop: Optional[Callable[[int], None]] = None,
        is_source: bool = True,
    ) -> FrameQueue:
        """Create and register the queue of one camera (or of uploads, with is_source=False)."""
        queue = FrameQueue(camera, maxsize, policy, self._condition, on_drop, is_source)
        with self._condition:
            self._queues.append(queue)
        return queue

    @property
    def ended(self) -> bool:
        """True when every camera has ended and every queue is empty."""
        with self._condition:
            return self._all_ended()

    def wake(self) -> None:
        """Wake a waiting worker (used on shutdown)."""
        with self._condition:
            self._condition.notify_all()

    def take(self, max_frames: int, first_timeout: float, max_wait: float) -> list[Frame]:
        """Wait up to `first_timeout` for a frame, then gather up to `max_frames` for `max_wait`.

        Gathering also ends early once every camera that is delivering has a frame in the
        batch and nothing else is queued: waiting longer would only add latency.
        """
        with self._condition:
            if not self._wait_for_any(time.monotonic() + first_timeout):
                return []
            deadline = time.monotonic() + max_wait
            batch: list[Frame] = []
            while len(batch) < max_frames:
                self._pop_round_robin(batch, max_frames)
                remaining = deadline - time.monotonic()
                if len(batch) >= max_frames or remaining <= 0 or self._every_active_camera_in(batch):
                    break
                if not self._queued():
                    self._condition.wait(remaining)
            self._condition.notify_all()
            return batch

    def _wait_for_any(self, deadline: float) -> bool:
        while not self._queued():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._all_ended():
                return False
            self._condition.wait(remaining)
        return True

    def _pop_round_robin(self, batch: list[Frame], max_frames: int) -> None:
        count = len(self._queues)
        progressed = True
        while progressed and len(batch) < max_frames:
            progressed = False
            for offset in range(count):
                if len(batch) >= max_frames:
                    break
                queue = self._queues[(self._next + offset) % count]
                frame = queue._pop()
                if frame is not None:
                    batch.append(frame)
                    progressed = True
            self._next = (self._next + 1) % count

    def _every_active_camera_in(self, batch: list[Frame]) -> bool:
        if self._queued():
            return False
        now = time.monotonic()
        present = {frame.camera for frame in batch}
        active = {
            q.camera
            for q in self._queues
            if q.is_source and not q.closed and q.last_put_mono is not None and now - q.last_put_mono < RECENT_SOURCE_S
        }
        return active <= present

    def _queued(self) -> bool:
        return any(len(queue) for queue in self._queues)

    def _all_ended(self) -> bool:
        sources = [queue for queue in self._queues if queue.is_source]
        return bool(sources) and all(queue.closed and not len(queue) for queue in sources)
