"""Bounded per-camera queues: drop-oldest for live sources, blocking for files, fair batches across cameras."""

import threading
import time

import numpy as np

from capture.frame import Frame
from capture.queue import FrameQueueSet
from config.schema import DropPolicy

IMAGE = np.zeros((8, 8, 3), np.uint8)


def frame(camera: str, seq: int) -> Frame:
    return Frame(camera, seq, time.time(), time.monotonic(), IMAGE)


def test_full_queue_drops_oldest_frame_and_counts_it():
    queues = FrameQueueSet()
    drops = []
    queue = queues.add("cam0", 2, DropPolicy.DROP_OLDEST, on_drop=drops.append)
    stop = threading.Event()
    for seq in (1, 2, 3, 4):
        queue.put(frame("cam0", seq), stop)
    batch = queues.take(8, first_timeout=0.1, max_wait=0.0)
    assert [f.seq for f in batch] == [3, 4]
    assert queue.dropped == 2 and sum(drops) == 2


def test_block_policy_waits_for_room_instead_of_dropping():
    queues = FrameQueueSet()
    queue = queues.add("file", 1, DropPolicy.BLOCK)
    stop = threading.Event()
    queue.put(frame("file", 1), stop)
    producer = threading.Thread(target=queue.put, args=(frame("file", 2), stop))
    producer.start()
    producer.join(0.2)
    assert producer.is_alive()  # still waiting for room
    assert [f.seq for f in queues.take(1, 0.1, 0.0)] == [1]
    producer.join(2)
    assert not producer.is_alive()
    assert [f.seq for f in queues.take(1, 0.5, 0.0)] == [2]
    assert queue.dropped == 0


def test_blocked_producer_is_released_by_stop():
    queues = FrameQueueSet()
    queue = queues.add("file", 1, DropPolicy.BLOCK)
    stop = threading.Event()
    queue.put(frame("file", 1), stop)
    producer = threading.Thread(target=queue.put, args=(frame("file", 2), stop))
    producer.start()
    stop.set()
    producer.join(2)
    assert not producer.is_alive()


def test_batches_take_frames_round_robin_from_all_cameras():
    queues = FrameQueueSet()
    stop = threading.Event()
    a = queues.add("a", 4, DropPolicy.DROP_OLDEST)
    b = queues.add("b", 4, DropPolicy.DROP_OLDEST)
    for seq in range(4):
        a.put(frame("a", seq), stop)
    b.put(frame("b", 0), stop)
    batch = queues.take(3, 0.1, 0.0)
    assert sorted(f.camera for f in batch) == ["a", "a", "b"]


def test_take_returns_empty_after_timeout_without_frames():
    queues = FrameQueueSet()
    queues.add("a", 2, DropPolicy.DROP_OLDEST)
    started = time.monotonic()
    assert queues.take(4, first_timeout=0.05, max_wait=0.0) == []
    assert time.monotonic() - started < 1.0


def test_batch_waits_for_the_other_active_camera_within_max_wait():
    queues = FrameQueueSet()
    stop = threading.Event()
    a = queues.add("a", 2, DropPolicy.DROP_OLDEST)
    b = queues.add("b", 2, DropPolicy.DROP_OLDEST)
    a.put(frame("a", 0), stop)
    b.put(frame("b", 0), stop)
    queues.take(8, 0.1, 0.0)  # both cameras are now known to be delivering
    a.put(frame("a", 1), stop)
    threading.Timer(0.05, b.put, args=(frame("b", 1), stop)).start()
    batch = queues.take(8, first_timeout=0.5, max_wait=1.0)
    assert {f.camera for f in batch} == {"a", "b"}


def test_closed_and_drained_queues_report_ended():
    queues = FrameQueueSet()
    stop = threading.Event()
    queue = queues.add("file", 2, DropPolicy.BLOCK)
    queue.put(frame("file", 1), stop)
    queue.close()
    assert not queues.ended
    assert len(queues.take(4, 0.1, 0.0)) == 1
    assert queues.ended
