"""Small real stand-ins shared by the tests: scripted cameras, tiny models, recording sinks, subscribers."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
import zmq

from capture.source import SourceError
from inference.model import TorchClassifier
from inference.preprocess import InputSpec
from stream.pipeline.result import Result

TINY_LABELS = ("apple", "banana", "cherry", "date")


def tiny_classifier(labels: Sequence[str] = TINY_LABELS, crop: int = 64, seed: int = 0) -> TorchClassifier:
    """A real (tiny, random) CNN behind the Classifier interface: fast enough for pipeline tests."""
    torch.manual_seed(seed)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, len(labels)),
    )
    return TorchClassifier(module, labels, "tiny-test", InputSpec.for_crop(crop))


class FixedClassifier:
    """Always answers the label whose index `pick(frame_image)` returns, with a near-certain score."""

    model_id = "fixed-test"

    def __init__(self, labels: Sequence[str] = TINY_LABELS, pick: Callable[[torch.Tensor], int] = lambda _x: 0,
                 delay_s: float = 0.0) -> None:
        self.labels = tuple(labels)
        self.input_spec = InputSpec.for_crop(32)
        self._pick = pick
        self._delay_s = delay_s
        self.batch_sizes: list[int] = []

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(batch.shape[0])
        if self._delay_s:
            time.sleep(self._delay_s)  # stands in for a model slower than the camera
        logits = torch.full((batch.shape[0], len(self.labels)), -10.0)
        for row in range(batch.shape[0]):
            logits[row, self._pick(batch[row])] = 10.0
        return logits


class ScriptedSource:
    """A camera that follows a script shared across reopenings: 'fail' (open fails), N (deliver N frames
    then fault), 'end' (end of stream), or 'forever'. It shows a still scene as a live camera does (one pixel
    flickers, as sensor noise does), or, with `still`, bit-identical frames as a frozen encoder does."""

    is_live = True

    def __init__(self, script: deque, name: str = "scripted", size: tuple[int, int] = (96, 128), still: bool = False) -> None:
        self.name = name
        self._script = script
        self._size = size
        self._still = still
        self._remaining: Optional[int] = None
        self._reads = 0
        self.opened = 0

    def open(self) -> None:
        step = self._script.popleft() if self._script else "forever"
        self.opened += 1
        if step == "fail":
            raise SourceError(f"cannot open {self.name}")
        self._remaining = None if step == "forever" else (0 if step == "end" else int(step))
        self._ends = step == "end"

    def fps(self) -> Optional[float]:
        return 30.0

    def read(self) -> Optional[np.ndarray]:
        time.sleep(1 / 60)
        if self._ends:
            return None
        if self._remaining is not None:
            if self._remaining <= 0:
                raise SourceError(f"{self.name} stopped delivering frames")
            self._remaining -= 1
        self._reads += 1
        image = np.full((*self._size, 3), 100, np.uint8)
        if not self._still:
            image[0, 0, 0] += self._reads % 2  # sensor noise in one sampled pixel: a still scene, not a frozen camera
        return image

    def close(self) -> None:
        pass


class RecordingSink:
    """Remembers every batch of results it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Result]] = []
        self._lock = threading.Lock()

    def submit(self, results: Sequence[Result]) -> None:
        with self._lock:
            self.batches.append(list(results))

    @property
    def results(self) -> list[Result]:
        with self._lock:
            return [r for batch in self.batches for r in batch]


class Subscriber:
    """A real ZeroMQ SUB socket on loopback that collects [topic, JSON] messages."""

    def __init__(self, endpoint: str, topics: Iterable[str] = ("",), context: Optional[zmq.Context] = None,
                 configure: Callable[[zmq.Socket], None] = lambda _socket: None) -> None:
        import json

        self._json = json
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        configure(self._socket)  # e.g. CurveZMQ keys, which must be set before connecting
        self._socket.connect(endpoint)
        self.messages: list[tuple[str, dict]] = []

    def collect_until(self, done: Callable[[list[tuple[str, dict]]], bool], timeout_s: float = 10.0) -> list[tuple[str, dict]]:
        """Receive until `done(messages)` is true or the timeout passes; returns all messages so far."""
        deadline = time.monotonic() + timeout_s
        while not done(self.messages) and time.monotonic() < deadline:
            if self._socket.poll(50):
                topic, payload = self._socket.recv_multipart()
                self.messages.append((topic.decode(), self._json.loads(payload)))
        return self.messages

    def of_type(self, kind: str) -> list[dict]:
        return [payload for _topic, payload in self.messages if payload["type"] == kind]

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_until_results(pipeline, count: int, timeout_s: float = 20.0) -> Subscriber:
    """Start `pipeline`, listen until `count` results arrived (or the timeout), stop it; the subscriber keeps what it saw."""
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint)
    try:
        subscriber.collect_until(lambda _m: len(subscriber.of_type("result")) >= count, timeout_s)
    finally:
        pipeline.shutdown()
        subscriber.close()
    return subscriber


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0, interval_s: float = 0.02) -> bool:
    """Poll `condition` until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()


class WedgingSource:
    """A live camera that delivers `frames` changing frames, then blocks inside read() (or, with
    wedge_open, inside open()) until `release` is set, like a driver stuck on a dead device."""

    is_live = True

    def __init__(self, release: threading.Event, frames: int = 5, wedge_open: bool = False, name: str = "wedging") -> None:
        self.name = name
        self.release = release
        self._frames = frames
        self._wedge_open = wedge_open
        self._reads = 0
        self.closed = threading.Event()
        self.close_thread: Optional[str] = None

    def open(self) -> None:
        if self._wedge_open:
            self.release.wait(60)

    def fps(self) -> Optional[float]:
        return 30.0

    def read(self) -> Optional[np.ndarray]:
        self._reads += 1
        if self._reads > self._frames:
            self.release.wait(60)
            raise SourceError(f"{self.name}: device went away")
        time.sleep(1 / 60)
        return np.full((48, 64, 3), self._reads % 200, np.uint8)

    def close(self) -> None:
        self.close_thread = threading.current_thread().name
        self.closed.set()


class NotifySocket:
    """A real Unix datagram socket standing in for systemd's NOTIFY_SOCKET; collects every datagram's fields."""

    def __init__(self, address: str) -> None:
        import socket

        self.address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("\0" + address[1:] if address.startswith("@") else address)
        self._socket.settimeout(0.05)
        self.datagrams: list[list[str]] = []

    def collect_until(self, done: Callable[[list[list[str]]], bool], timeout_s: float = 30.0) -> bool:
        """Receive datagrams until `done(datagrams)` holds or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while not done(self.datagrams) and time.monotonic() < deadline:
            try:
                self.datagrams.append(self._socket.recv(4096).decode().split("\n"))
            except TimeoutError:
                pass
        return done(self.datagrams)

    def fields(self, start: int = 0) -> list[str]:
        """Every field received (from datagram `start` on), in order."""
        return [field for datagram in self.datagrams[start:] for field in datagram]

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "NotifySocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
