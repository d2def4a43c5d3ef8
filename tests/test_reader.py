"""A wedged camera call never hangs capture: the reader is abandoned, a fresh one takes over, the old one releases later."""

import threading

import pytest

from capture.reader import ReaderStopped, ReaderTimeout, SupervisedSource
from capture.status import CameraState, CameraStatus
from capture.thread import MAX_STUCK_READERS
from tests.fakes import WedgingSource, wait_for
from tests.test_capture_thread import camera_config, drain, start_capture


def supervised(source, stop=None):
    status = CameraStatus("cam0", source.name)
    return SupervisedSource(source, "capture-cam0-reader-1", status, stop or threading.Event()), status


def test_read_that_overruns_its_deadline_raises_and_counts_a_stuck_reader():
    release = threading.Event()
    source, status = supervised(WedgingSource(release, frames=0))
    source.open(5)
    with pytest.raises(ReaderTimeout, match="took longer than 0.3 s"):
        source.read(0.3)
    release.set()
    assert status.snapshot().abandoned_readers == 1
    source.close()


def test_abandoned_reader_releases_its_camera_when_the_call_returns():
    release = threading.Event()
    camera = WedgingSource(release, frames=0)
    source, status = supervised(camera)
    source.open(5)
    with pytest.raises(ReaderTimeout):
        source.read(0.2)
    source.close()
    assert status.stuck_readers == 1 and not camera.closed.is_set()
    release.set()
    assert wait_for(camera.closed.is_set, 5)
    assert wait_for(lambda: status.stuck_readers == 0, 5)
    assert camera.close_thread == "capture-cam0-reader-1"  # released by its own reader, never concurrently


def test_healthy_reader_closes_its_camera_in_the_reader_thread_and_ends():
    camera = WedgingSource(threading.Event(), frames=3)
    source, status = supervised(camera)
    source.open(5)
    assert source.read(5).shape == (48, 64, 3)
    source.close()
    assert camera.closed.is_set() and camera.close_thread == "capture-cam0-reader-1"
    assert status.snapshot().abandoned_readers == 0
    assert not any(t.name == "capture-cam0-reader-1" for t in threading.enumerate())


def test_stop_interrupts_a_wedged_open_at_once():
    release, stop = threading.Event(), threading.Event()
    source, _status = supervised(WedgingSource(release, wedge_open=True), stop)
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(ReaderStopped):
        source.open(30)
    release.set()


def test_capture_thread_replaces_a_wedged_reader_and_keeps_streaming():
    release = threading.Event()
    sources = []

    def make_source():
        sources.append(WedgingSource(release, frames=5 if not sources else 10_000))
        return sources[-1]

    camera = camera_config(source="usb:0", read_timeout_s=0.5)
    thread, queues, status, stop = start_capture(camera, make_source)
    try:
        states = []
        assert wait_for(lambda: states.append(status.state) or len(sources) >= 2, 10)
        frames = drain(queues, 20, timeout_s=10)
        assert wait_for(lambda: status.state is CameraState.STREAMING, 5)
    finally:
        stop.set()
        release.set()
        thread.join(3)
    assert CameraState.RECONNECTING in states
    assert frames[-1].seq > 5
    snapshot = status.snapshot()
    assert snapshot.abandoned_readers >= 1 and snapshot.reconnects == 1
    assert not thread.is_alive()


def test_no_new_reader_while_too_many_are_stuck():
    release = threading.Event()
    opened = []

    def make_source():
        opened.append(1)
        return WedgingSource(release, frames=0)

    camera = camera_config(source="usb:0", read_timeout_s=0.1, reconnect_initial_s=0.01, reconnect_max_s=0.02)
    thread, _queues, status, stop = start_capture(camera, make_source)
    try:
        assert wait_for(lambda: "still stuck in camera calls" in (status.snapshot().last_error or ""), 10)
        count = len(opened)
        assert not wait_for(lambda: len(opened) > count, 0.5)
    finally:
        stop.set()
        release.set()
        thread.join(3)
    assert count == MAX_STUCK_READERS
