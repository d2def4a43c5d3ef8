"""Publisher faults: a stuck subscriber never slows the pipeline, a restarted one hears heartbeats again,
and shutdown never hangs on messages nobody reads."""

import select
import signal
import subprocess
import sys
import threading
import time

import pytest
import zmq

from stream.pipeline.app import Pipeline
from stream.wire.publisher import ZmqPublisher
from tests.conftest import REPO, cli_env, make_config
from tests.fakes import FixedClassifier, Subscriber, wait_for

LONG_LABELS = tuple(f"product {i}: " + "a long catalogue description " * 7 for i in range(20))


def busy_pipeline(**publisher) -> Pipeline:
    """Two synthetic cameras paced at 120 fps (a rate the worker sustains even on a loaded machine) with large
    result messages (about 5 kB), so a subscriber that stops reading backs up within a second or two."""
    cameras = [{"id": f"cam{i}", "source": "synthetic", "fps": 120, "width": 64, "height": 48} for i in range(2)]
    config = make_config(cameras, model={"top_k": 20}, publisher={"send_hwm": 50, **publisher})
    return Pipeline(config, FixedClassifier(labels=LONG_LABELS), threading.Event())


@pytest.fixture
def env():
    return cli_env()


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


def test_closing_does_not_hang_on_messages_a_frozen_subscriber_never_takes(env):
    """A SUB socket that is merely not read drops for itself; a frozen process (SIGSTOP) backs TCP up instead,
    so ZeroMQ keeps unsent messages for it: ending the context (as at exit) must give up after linger_ms."""
    context = zmq.Context()
    publisher = ZmqPublisher("tcp://127.0.0.1:*", send_hwm=50, linger_ms=200, context=context).bind()
    frozen = subprocess.Popen([sys.executable, "-m", "stream", "subscribe", "--endpoint", publisher.endpoint],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: publisher.send((b"heartbeat", b"{}")) and select.select([frozen.stdout], [], [], 0.05)[0])
        frozen.send_signal(signal.SIGSTOP)
        payload = b"x" * 4096
        for _ in range(5000):  # 20 MB, paced so the kernel's socket buffers (~10 MB) fill before ZeroMQ's queue does
            publisher.send((b"result/cam0", payload))
            time.sleep(0.0004)  # pacing the sender, not waiting for anything
        closer = threading.Thread(target=lambda: (publisher.close(), context.term()), name="test-close")  # term() waits
        closer.start()
        closer.join(10)
        hung = closer.is_alive()
    finally:
        frozen.kill()
        frozen.wait(5)
    assert not hung
