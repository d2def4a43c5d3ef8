"""The simplest POS client: subscribe to the publisher and print every message as one JSON line."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, TextIO

import zmq

from config.schema import DEFAULT_ENDPOINT
from stream.wire.basket import Basket

POLL_MS = 100


def receive(
    endpoint: str = DEFAULT_ENDPOINT,
    topics: Sequence[str] = ("",),
    stop: Optional[threading.Event] = None,
    duration: Optional[float] = None,
    context: Optional[zmq.Context] = None,
    curve: Optional[tuple[Path, Path]] = None,
) -> Iterator[tuple[str, dict]]:
    """Yield (topic, payload) from a publisher until `stop`, `duration`, or the caller stops iterating.

    `curve` is (server public key file, client secret key file) for a publisher that requires CurveZMQ."""
    context = context or zmq.Context.instance()
    deadline = None if duration is None else time.monotonic() + duration
    with context.socket(zmq.SUB) as socket:
        socket.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            socket.setsockopt(zmq.SUBSCRIBE, topic.encode("ascii"))
        if curve is not None:
            from stream.wire.curve import secure_client

            secure_client(socket, *curve)
        socket.connect(endpoint)
        while not (stop and stop.is_set()) and (deadline is None or time.monotonic() < deadline):
            if not socket.poll(POLL_MS):
                continue
            topic, payload = socket.recv_multipart()[:2]
            yield topic.decode("ascii", "replace"), json.loads(payload)


def print_messages(
    messages: Iterator[tuple[str, dict]], out: TextIO, count: Optional[int] = None,
    render: Callable[[str, dict], Optional[str]] = lambda _topic, payload: json.dumps(payload, separators=(",", ":")),
) -> int:
    """Write each rendered message as one line (flushed); stop after `count` messages. Returns how many."""
    printed = 0
    for topic, payload in messages:
        line = render(topic, payload)
        if line is not None:
            out.write(line + "\n")
            out.flush()
        printed += 1
        if count is not None and printed >= count:
            break
    return printed


class BasketPrinter(threading.Thread):
    """A POS stand-in: subscribes to events and prints the basket as products are added."""

    def __init__(self, endpoint: str, out: TextIO, stop: threading.Event, context: Optional[zmq.Context] = None) -> None:
        super().__init__(name="basket-printer", daemon=True)
        self._endpoint, self._out, self._stop_event, self._context = endpoint, out, stop, context
        self.basket = Basket()

    def run(self) -> None:
        messages = receive(self._endpoint, ("event/",), stop=self._stop_event, context=self._context)
        print_messages(messages, self._out, render=lambda _topic, payload: self.basket.line_for(payload))
