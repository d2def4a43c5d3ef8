"""The ZeroMQ PUB socket and the thread that publishes results, events and heartbeats without blocking the worker."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Mapping, Optional, Sequence

import zmq

from config.schema import FreshnessConfig, PublisherConfig
from stream.pipeline.events import EventTracker
from stream.pipeline.result import Result
from stream.wire.curve import CurveServer
from stream.wire.encoder import Message, WireEncoder
from stream.wire.errors import PublishError
from stream.wire.ipc import prepare_ipc_bind, share_with_group

log = logging.getLogger(__name__)

HeartbeatCameras = Callable[[], Mapping[str, Mapping[str, Any]]]
HeartbeatModel = Callable[[], Mapping[str, Any]]
"""The heartbeat's `model` object: {id, backend, precision, state, optimizing}."""
PEER_HEARTBEAT_MS = 1000
"""ZMTP pings to each subscriber; one silent for PEER_TIMEOUT_MS is dropped with whatever was queued for it."""
PEER_TIMEOUT_MS = 3000


class ZmqPublisher:
    """A bound PUB socket whose sends never block; a send refused by ZeroMQ is counted, not retried.

    With `curve`, the socket encrypts and admits only allow-listed clients; as ZeroMQ allows one
    authenticator per context, a secured publisher owns a context of its own."""

    def __init__(self, endpoint: str, send_hwm: int = 1000, linger_ms: int = 200,
                 context: Optional[zmq.Context] = None, curve: Optional[CurveServer] = None) -> None:
        self.endpoint = endpoint
        self._send_hwm = send_hwm
        self._linger_ms = linger_ms
        self._curve = curve
        self._shared_context = context
        self._context: Optional[zmq.Context] = None
        self._authenticator = None
        self._socket: Optional[zmq.Socket] = None
        self.sent = 0
        self.dropped = 0

    @classmethod
    def from_config(cls, config: PublisherConfig, context: Optional[zmq.Context] = None) -> "ZmqPublisher":
        """A publisher as configured (loading the CurveZMQ keys when set)."""
        return cls(config.endpoint, config.send_hwm, config.linger_ms, context, CurveServer.from_config(config))

    def bind(self) -> "ZmqPublisher":
        """Create and bind the socket; raise PublishError naming the endpoint when that fails."""
        prepare_ipc_bind(self.endpoint)
        self._context = zmq.Context() if self._curve else (self._shared_context or zmq.Context.instance())
        socket = self._context.socket(zmq.PUB)
        socket.setsockopt(zmq.SNDHWM, self._send_hwm)
        socket.setsockopt(zmq.LINGER, self._linger_ms)
        socket.setsockopt(zmq.HEARTBEAT_IVL, PEER_HEARTBEAT_MS)
        socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, PEER_TIMEOUT_MS)
        try:
            if self._curve is not None:
                self._authenticator = self._curve.start_authenticator(self._context)
                self._curve.secure(socket)
            socket.bind(self.endpoint)
        except zmq.ZMQError as exc:
            self._abandon(socket)
            raise PublishError(
                f"cannot bind publisher to {self.endpoint}: {exc.strerror}; "
                "is another streamrec running? set publisher.endpoint or --publish"
            ) from None
        except BaseException:
            self._abandon(socket)
            raise
        self._socket = socket
        share_with_group(self.endpoint)
        self.endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)  # resolves a `tcp://host:*` wildcard port
        log.info("publishing on %s%s", self.endpoint, " (CurveZMQ)" if self._curve else "")
        return self

    def send(self, message: Message) -> bool:
        """Send [topic, payload] without waiting; False (and counted) when ZeroMQ refuses it."""
        if self._socket is None:
            raise PublishError("publisher is not bound")
        try:
            self._socket.send_multipart(message, flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        """Close the socket, waiting at most linger_ms for unsent messages."""
        if self._socket is not None:
            self._socket.close(linger=self._linger_ms)
            self._socket = None
        self._stop_authenticator()
        if self._curve is not None and self._context is not None:
            self._context.term()  # our own context; waits at most linger_ms: its only socket is closed
        self._context = None

    def _abandon(self, socket: zmq.Socket) -> None:
        """Undo a failed bind: close the socket, stop the authenticator, end a context of our own."""
        socket.close(linger=0)
        self.close()

    def _stop_authenticator(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None

    def __enter__(self) -> "ZmqPublisher":
        return self.bind() if self._socket is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PublisherThread(threading.Thread):
    """Publishes queued results and their events, and a heartbeat every interval even when idle."""

    def __init__(
        self,
        publisher: ZmqPublisher,
        encoder: WireEncoder,
        tracker: EventTracker,
        heartbeat_cameras: HeartbeatCameras,
        config: PublisherConfig,
        freshness: FreshnessConfig,
        heartbeat_model: Optional[HeartbeatModel] = None,
    ) -> None:
        super().__init__(name="publisher", daemon=True)
        self._heartbeat_model = heartbeat_model
        self._publisher = publisher
        self._encoder = encoder
        self._tracker = tracker
        self._heartbeat_cameras = heartbeat_cameras
        self._interval = config.heartbeat_interval_s
        self._stale_after_s = freshness.stale_after_ms / 1000.0
        self._pending: deque[Result] = deque()
        self._queue_size = config.queue_size
        self._condition = threading.Condition()
        self._closing = False
        self._started_mono = time.monotonic()
        self.queue_dropped = 0
        self.failures = 0
        self.last_cycle_mono = time.monotonic()
        """When the thread last went round its loop (health checks read it)."""

    def submit(self, results: Sequence[Result]) -> None:
        """Queue results for publishing; never blocks (the oldest are dropped and counted when full)."""
        with self._condition:
            for result in results:
                if len(self._pending) >= self._queue_size:
                    self._pending.popleft()
                    self.queue_dropped += 1
                self._pending.append(result)
            self._condition.notify()

    def close(self) -> None:
        """Publish what is queued, send a last heartbeat, and end the thread."""
        with self._condition:
            self._closing = True
            self._condition.notify()

    def run(self) -> None:
        next_heartbeat = time.monotonic()
        while True:
            self.last_cycle_mono = time.monotonic()
            results, closing = self._wait_for_work(next_heartbeat)
            for result in results:
                self._publish_result(result)
            if closing or time.monotonic() >= next_heartbeat:
                self._publish_heartbeat()
                next_heartbeat = max(next_heartbeat + self._interval, time.monotonic() + self._interval / 2)
            if closing:
                return

    def _wait_for_work(self, next_heartbeat: float) -> tuple[list[Result], bool]:
        with self._condition:
            while not self._pending and not self._closing:
                remaining = next_heartbeat - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            results = list(self._pending)
            self._pending.clear()
            return results, self._closing

    def _publish_result(self, result: Result) -> None:
        try:
            now = time.monotonic()
            age_s = now - result.frame.captured_mono
            stale = age_s > self._stale_after_s
            self._publisher.send(self._encoder.result(result, age_s * 1000.0, stale))
            for event in self._tracker.update(result, stale):
                self._publisher.send(self._encoder.event(event))
                log.info("%s: %s %s (%s)", event.camera, event.kind.value, event.label or "unknown item", event.event_id)
        except Exception:
            self._count_failure("publishing a result failed")

    def _publish_heartbeat(self) -> None:
        try:
            uptime = time.monotonic() - self._started_mono
            model = self._heartbeat_model() if self._heartbeat_model is not None else None
            self._publisher.send(self._encoder.heartbeat(uptime, self._heartbeat_cameras(), model))
        except Exception:
            self._count_failure("publishing a heartbeat failed")

    def _count_failure(self, what: str) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 1000 == 0:
            log.exception("%s (%d failures so far)", what, self.failures)
