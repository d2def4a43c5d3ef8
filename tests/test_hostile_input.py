"""Hostile and broken input: corrupt or truncated video files, a camera that returns garbage, a frame size that
changes, a device that does not exist. Each gives a clear log line and the other cameras keep going."""

import logging
import threading
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pytest

from capture.factory import SourceFactory
from capture.status import CameraState
from capture.video_file import VideoFileSource
from stream.pipeline.app import Pipeline
from tests.conftest import make_config
from tests.fakes import FixedClassifier, RecordingSink, ScriptedSource, wait_for
from tests.test_capture_thread import camera_config, drain, start_capture


def write_clip(path: Path, frames: int = 30) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for index in range(frames):
        writer.write(np.full((48, 64, 3), (index * 7) % 250, np.uint8))
    writer.release()
    return path


def run_file(path: Path, timeout_s: float = 10):
    camera = camera_config(f"file:{path}", pace=False)
    thread, queues, status, stop = start_capture(camera, lambda: VideoFileSource(str(path)))
    return thread, queues, status, stop


def test_truncated_file_delivers_what_it_can_and_ends_cleanly(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", 30)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    thread, queues, status, _stop = run_file(clip)
    frames = drain(queues, 30, timeout_s=5)
    thread.join(10)
    assert 0 < len(frames) < 30
    assert not thread.is_alive() and not thread.failed and status.state is CameraState.STOPPED


@pytest.mark.parametrize("content", [b"", b"\x00" * 4096, bytes(np.random.default_rng(1).integers(0, 256, 50_000, np.uint8))],
                         ids=["empty", "zeros", "random"])
def test_file_that_is_not_a_video_is_reported_and_retried_without_crashing(tmp_path, content, caplog):
    path = tmp_path / "camera.mp4"
    path.write_bytes(content)
    caplog.set_level(logging.WARNING)
    thread, _queues, status, stop = run_file(path)
    try:
        assert wait_for(lambda: status.snapshot().last_error is not None, 10)
        assert wait_for(lambda: status.state is CameraState.CONNECTING, 5)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.failed
    message = status.snapshot().last_error
    assert str(path) in message and ("cannot open" in message or "no decodable frames" in message)
    assert any(str(path) in record.getMessage() for record in caplog.records)


def test_file_with_a_corrupt_middle_skips_what_it_cannot_decode(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", 40)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = bytes(np.random.default_rng(2).integers(0, 256, 2000, np.uint8))
    clip.write_bytes(bytes(data))
    thread, queues, _status, _stop = run_file(clip)
    frames = drain(queues, 40, timeout_s=5)
    thread.join(10)
    assert len(frames) >= 20 and not thread.failed and not thread.is_alive()


class GarbageSource(ScriptedSource):
    """A live camera whose driver returns junk: wrong types, dtypes and shapes, interleaved with real frames."""

    JUNK = ["not an image", np.zeros((48, 64, 3), np.float32), np.zeros((1, 1, 3), np.uint8), [1, 2, 3],
            np.zeros((48, 64, 2), np.uint8), np.zeros((0, 0), np.uint8)]

    def __init__(self, good_every: int = 0) -> None:
        super().__init__(deque(["forever"]))
        self._good_every = good_every
        self._count = 0

    def read(self):
        self._count += 1
        if self._good_every and self._count % self._good_every == 0:
            return super().read()
        return self.JUNK[self._count % len(self.JUNK)]


def test_camera_mixing_junk_with_pictures_delivers_the_pictures(caplog):
    caplog.set_level(logging.WARNING)
    thread, queues, status, stop = start_capture(camera_config("usb:0"), lambda: GarbageSource(good_every=3))
    try:
        frames = drain(queues, 10)
    finally:
        stop.set()
        thread.join(3)
    assert len(frames) >= 10 and all(f.image.shape == (96, 128, 3) for f in frames)
    assert any("unusable frame" in record.getMessage() for record in caplog.records)
    assert status.snapshot().reconnects == 0


def test_camera_returning_only_junk_is_reconnected_after_the_read_timeout():
    thread, _queues, status, stop = start_capture(camera_config("usb:0", read_timeout_s=0.5), lambda: GarbageSource())
    try:
        assert wait_for(lambda: "no usable frame for 0.5 s" in (status.snapshot().last_error or ""), 10)
    finally:
        stop.set()
        thread.join(3)
    assert not thread.failed


def test_frame_size_change_after_a_reconnect_flows_downstream(caplog):
    caplog.set_level(logging.INFO)
    sizes = deque([(96, 128), (240, 320)])
    scripts = deque([20, "forever"])

    def factory(_camera):
        return ScriptedSource(deque([scripts.popleft() if scripts else "forever"]), size=sizes.popleft() if sizes else (240, 320))

    config = make_config([{"id": "cam0", "source": "usb:0", "reconnect_initial_s": 0.05, "reconnect_max_s": 0.1}])
    recorder = RecordingSink()
    pipeline = Pipeline(config, FixedClassifier(), threading.Event(), source_factory=factory, extra_sinks=[recorder])
    pipeline.start()
    try:
        assert wait_for(lambda: {r.frame.image.shape for r in recorder.results} >= {(96, 128, 3), (240, 320, 3)}, 15)
    finally:
        pipeline.shutdown()
    assert any("frame size changed from 128x96 to 320x240" in r.getMessage() for r in caplog.records)
    assert pipeline.stats.failed_batches == 0


def test_other_cameras_keep_streaming_beside_a_corrupt_file_and_a_missing_device(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 1000)
    config = make_config([{"id": "good", "source": "synthetic"},
                          {"id": "junk", "source": f"file:{junk}", "reconnect_initial_s": 0.1, "reconnect_max_s": 0.2},
                          {"id": "gone", "source": "/dev/video63", "reconnect_initial_s": 0.1, "reconnect_max_s": 0.2}])
    recorder = RecordingSink()
    pipeline = Pipeline(config, FixedClassifier(), threading.Event(), source_factory=SourceFactory(), extra_sinks=[recorder])
    pipeline.start()
    try:
        assert wait_for(lambda: all(s.snapshot().last_error for s in pipeline.statuses[1:]), 20)
        seen = len(recorder.results)
        assert wait_for(lambda: len(recorder.results) > seen + 20, 15)
    finally:
        pipeline.shutdown()
    assert {r.camera for r in recorder.results} == {"good"}
    assert "cannot open /dev/video63" in pipeline.statuses[2].snapshot().last_error
    assert not any(capture.failed for capture in pipeline.captures)
