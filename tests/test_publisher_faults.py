"""Publisher faults: a stuck subscriber never slows the pipeline, a restarted one hears heartbeats again,
and shutdown never hangs on messages nobody reads."""

import threading
import time

import pytest
import zmq

from stream.app import Pipeline
from tests.conftest import make_config
from tests.fakes import FixedClassifier, Subscriber, wait_for

LONG_LABELS = tuple(f"product {i}: " + "a long catalogue description " * 7 for i in range(20))


def busy_pipeline(**publisher) -> Pipeline:
    """Two synthetic cameras paced at 120 fps (a rate the worker sustains even on a loaded machine) with large
    result messages (about 5 kB), so a subscriber that stops reading backs up within a second or two."""
    cameras = [{"id": f"cam{i}", "source": "synthetic", "fps": 120, "width": 64, "height": 48} for i in range(2)]
    config = make_config(cameras, model={"top_k": 20}, publisher={"send_hwm": 50, **publisher})
    return Pipeline(config, FixedClassifier(labels=LONG_LABELS), threading.Event())


def classified(pipeline: Pipeline) -> int:
    return sum(pipeline.stats.classified(f"cam{i}") for i in range(2))


class StoppableReader(threading.Thread):
    """A subscriber that reads everything until paused; its receive buffers are small so it backs up at once."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(name="test-reader", daemon=True)
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, 10)
        self.socket.setsockopt(zmq.RCVBUF, 4096)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"result/")
        self.socket.connect(endpoint)
        self.reading = threading.Event()
        self.reading.set()
        self.done = threading.Event()
        self.seqs: list[int] = []

    def run(self) -> None:
        import json

        while not self.done.is_set():
            if not self.reading.wait(0.05):
                continue
            if self.socket.poll(50):
                self.seqs.append(json.loads(self.socket.recv_multipart()[1])["seq"])

    def close(self) -> None:
        self.done.set()
        self.join(5)
        self.socket.close()


def rate_over(pipeline: Pipeline, seconds: float) -> float:
    start_count, start = classified(pipeline), time.monotonic()
    pipeline.stop.wait(seconds)
    return (classified(pipeline) - start_count) / (time.monotonic() - start)


@pytest.mark.slow
def test_a_subscriber_that_stops_reading_for_10_s_does_not_slow_the_pipeline():
    pipeline = busy_pipeline()
    pipeline.start()
    reader = StoppableReader(pipeline.publisher.endpoint)
    reader.start()
    try:
        assert wait_for(lambda: len(reader.seqs) >= 50)
        reading_rate = rate_over(pipeline, 3.0)
        reader.reading.clear()
        stalled_rate = rate_over(pipeline, 10.0)
        published_during_stall = pipeline.publisher.sent
        reader.reading.set()
        assert wait_for(lambda: reader.seqs and reader.seqs[-1] > published_during_stall)
    finally:
        pipeline.shutdown()
        reader.close()
    assert stalled_rate > 0.4 * reading_rate, (stalled_rate, reading_rate)
    gaps = [b - a for a, b in zip(reader.seqs, reader.seqs[1:])]
    assert max(gaps) > 100, "the stalled subscriber's messages were dropped for it, not queued in front of the worker"


def test_heartbeats_resume_after_a_subscriber_restarts():
    pipeline = Pipeline(make_config(), FixedClassifier(), threading.Event())
    pipeline.start()
    try:
        with Subscriber(pipeline.publisher.endpoint, topics=("heartbeat",)) as first:
            first.collect_until(lambda messages: len(messages) >= 2)
        with Subscriber(pipeline.publisher.endpoint, topics=("heartbeat",)) as second:
            second.collect_until(lambda messages: len(messages) >= 2)
    finally:
        pipeline.shutdown()
    assert len(first.messages) >= 2 and len(second.messages) >= 2
    assert second.messages[0][1]["seq"] > first.messages[-1][1]["seq"]
    assert second.messages[0][1]["boot"] == first.messages[0][1]["boot"]


def test_shutdown_does_not_hang_on_messages_a_stuck_subscriber_never_reads():
    pipeline = busy_pipeline(linger_ms=200)
    pipeline.start()
    stuck = StoppableReader(pipeline.publisher.endpoint)
    stuck.reading.clear()
    stuck.start()
    try:
        pipeline.stop.wait(1.0)  # let unsent messages pile up for the stuck subscriber
        stopper = threading.Thread(target=pipeline.shutdown, name="test-shutdown")
        stopper.start()
        stopper.join(10)
        hung = stopper.is_alive()
    finally:
        stuck.close()
    assert not hung
    assert not pipeline.publisher_thread.is_alive()
