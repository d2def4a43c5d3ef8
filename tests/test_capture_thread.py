"""The capture thread stamps frames, survives camera faults with backoff, and ends cleanly."""

import random
import threading
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from capture.queue import FrameQueueSet
from capture.status import CameraState, CameraStatus
from capture.synthetic import SyntheticSource
from capture.thread import CaptureThread
from capture.video_file import VideoFileSource
from config.loader import validate
from tests.fakes import ScriptedSource, wait_for


def camera_config(source="synthetic", **options):
    options = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, **options}
    return validate({"cameras": [{"id": "cam0", "source": source, **options}]}).cameras[0]


def start_capture(camera, make_source):
    queues = FrameQueueSet()
    status = CameraStatus(camera.id, camera.spec.safe_text)
    queue = queues.add(camera.id, camera.queue_size, camera.effective_drop_policy, status.frame_dropped)
    stop = threading.Event()
    thread = CaptureThread(camera, make_source, queue, status, stop, rng=random.Random(1))
    thread.start()
    return thread, queues, status, stop


def drain(queues, count, timeout_s=5.0):
    frames = []
    wait_for(lambda: frames.extend(queues.take(8, 0.05, 0.0)) or len(frames) >= count, timeout_s)
    return frames


def test_frames_are_stamped_with_camera_sequence_and_times():
    thread, queues, status, stop = start_capture(camera_config(), lambda: SyntheticSource(160, 120, fps=60))
    frames = drain(queues, 3)
    stop.set()
    thread.join(2)
    assert [f.camera for f in frames[:3]] == ["cam0"] * 3
    assert [f.seq for f in frames[:3]] == sorted(f.seq for f in frames[:3])
    assert frames[0].image.shape == (120, 160, 3) and frames[0].image.dtype == np.uint8
    assert frames[1].captured_mono > frames[0].captured_mono and frames[0].captured_at > 1e9
    assert not thread.is_alive() and status.state is CameraState.STOPPED


def test_camera_that_fails_to_open_is_retried_and_resumes():
    script = deque(["fail", "fail", "forever"])
    thread, queues, status, stop = start_capture(camera_config(), lambda: ScriptedSource(script))
    states = []
    wait_for(lambda: states.append(status.state) or status.state is CameraState.STREAMING, 5)
    frames = drain(queues, 2)
    stop.set()
    thread.join(2)
    assert CameraState.CONNECTING in states
    assert len(frames) >= 2
    assert status.snapshot().captured >= 2


def test_camera_that_dies_mid_stream_reconnects_and_keeps_counting():
    script = deque([5, "fail", "forever"])
    thread, queues, status, stop = start_capture(camera_config(), lambda: ScriptedSource(script))
    states = []
    frames = []
    wait_for(lambda: states.append(status.state) or frames.extend(queues.take(8, 0.02, 0.0)) or len(frames) >= 10, 8)
    stop.set()
    thread.join(2)
    assert CameraState.RECONNECTING in states
    assert status.snapshot().reconnects == 1
    assert len(frames) >= 10 and frames[-1].seq > 5  # sequence continues across the reconnect


def test_stop_interrupts_the_backoff_wait():
    camera = camera_config(reconnect_initial_s=30, reconnect_max_s=60)
    thread, _queues, _status, stop = start_capture(camera, lambda: ScriptedSource(deque(["fail"] * 10)))
    wait_for(lambda: _status.snapshot().last_error is not None, 2)
    stop.set()
    thread.join(1.0)
    assert not thread.is_alive()


def test_end_of_file_closes_the_queue(tmp_path: Path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for value in range(12):
        writer.write(np.full((48, 64, 3), value * 10, np.uint8))
    writer.release()
    camera = camera_config(f"file:{path}", pace=False)
    thread, queues, status, _stop = start_capture(camera, lambda: VideoFileSource(str(path)))
    frames = drain(queues, 12)
    thread.join(5)
    assert len(frames) == 12 and queues.ended
    assert status.state is CameraState.STOPPED


def test_missing_file_is_retried_until_it_appears(tmp_path: Path):
    path = tmp_path / "later.avi"
    camera = camera_config(f"file:{path}", pace=False)
    thread, queues, status, stop = start_capture(camera, lambda: VideoFileSource(str(path)))
    assert wait_for(lambda: status.snapshot().last_error is not None, 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for _ in range(5):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    frames = drain(queues, 5, timeout_s=8)
    thread.join(5)
    assert len(frames) == 5


def test_odd_frames_are_converted_or_skipped():
    images = deque([np.zeros((40, 50), np.uint8), np.zeros((40, 50, 4), np.uint8), np.zeros((1, 1, 3), np.uint8),
                    np.zeros((40, 50, 3), np.float32), np.zeros((40, 50, 3), np.uint8)])

    class OddSource(ScriptedSource):
        def read(self):
            return images.popleft() if images else None

    thread, queues, _status, _stop = start_capture(camera_config(pace=False), lambda: OddSource(deque(["forever"])))
    thread.join(5)
    frames = drain(queues, 3, timeout_s=2)
    assert [f.image.shape for f in frames] == [(40, 50, 3)] * 3
