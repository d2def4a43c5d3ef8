"""Three kinds of stall, told apart: silent (see test_reader), frozen (same picture: reconnect) and
blocked (our worker is behind: report only)."""

import threading
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pytest

from capture.stall import FreezeDetector, worker_behind
from capture.status import CameraState
from capture.video_file import VideoFileSource
from stream.pipeline.app import Pipeline
from tests.conftest import make_config
from tests.fakes import FixedClassifier, ScriptedSource, Subscriber, wait_for
from tests.test_capture_thread import camera_config, drain, start_capture


def test_freeze_detector_counts_time_since_the_picture_last_changed():
    detector = FreezeDetector()
    still = np.full((480, 640, 3), 7, np.uint8)
    assert detector.observe(still, 10.0)
    assert not detector.observe(still.copy(), 11.0)
    assert detector.still_for(12.5) == pytest.approx(2.5)


def test_one_changed_pixel_in_the_sample_is_a_change():
    detector = FreezeDetector()
    image = np.full((480, 640, 3), 7, np.uint8)
    detector.observe(image, 0.0)
    noisy = image.copy()
    noisy[0, 0, 1] = 8  # nearest-neighbour sampling keeps single pixels: sensor noise counts as life
    assert detector.observe(noisy, 1.0)


@pytest.mark.parametrize("blocked, overflow, interval, expected", [
    (False, 0.5, 0.1, False),   # short overflow: a normal drop-oldest camera
    (False, 3.0, None, True),   # overflowing for blocked_after_s without a take
    (True, 0.0, 4.0, True),     # one take after a long gap: still behind
    (True, 0.0, 0.1, False),    # takes at a normal rate again: caught up
    (True, 3.5, 0.1, True),     # overflowing again
])
def test_worker_behind_has_hysteresis(blocked, overflow, interval, expected):
    assert worker_behind(blocked, overflow, interval, after_s=3.0) is expected


def test_live_camera_repeating_one_picture_becomes_frozen_and_is_reconnected():
    opened = []

    def make_source():
        opened.append(ScriptedSource(deque(["forever"]), still=True))
        return opened[-1]

    thread, _queues, status, stop = start_capture(camera_config("usb:0", frozen_after_s=0.4), make_source)
    try:
        assert wait_for(lambda: status.state is CameraState.FROZEN, 5)
        assert wait_for(lambda: len(opened) >= 2, 5)
    finally:
        stop.set()
        thread.join(3)
    snapshot = status.snapshot()
    assert "sent the same picture for 0.4 s" in snapshot.last_error
    assert snapshot.reconnects >= 1


def test_frozen_camera_stays_frozen_until_its_picture_moves_again():
    sources = deque([ScriptedSource(deque(["forever"]), still=True), ScriptedSource(deque(["forever"]), still=True)])
    thread, queues, status, stop = start_capture(
        camera_config("usb:0", frozen_after_s=0.4), lambda: sources.popleft() if sources else ScriptedSource(deque()))
    try:
        states = []
        assert wait_for(lambda: states.append(status.state) or not sources, 10)
        queues.take(8, 0.0, 0.0)
        assert wait_for(lambda: states.append(status.state) or status.state is CameraState.STREAMING, 10)
        frames = drain(queues, 5)
    finally:
        stop.set()
        thread.join(3)
    after_frozen = states[states.index(CameraState.FROZEN):]
    assert CameraState.STREAMING not in after_frozen[:-1], "must not claim streaming while the picture is the same"
    assert len(frames) >= 5


def test_frozen_detection_can_be_turned_off():
    thread, queues, status, stop = start_capture(
        camera_config("usb:0", frozen_after_s=0), lambda: ScriptedSource(deque(["forever"]), still=True))
    try:
        frames = drain(queues, 40, timeout_s=10)
    finally:
        stop.set()
        thread.join(3)
    assert len(frames) >= 40 and status.snapshot().reconnects == 0


def test_a_still_video_file_is_content_not_a_frozen_camera(tmp_path: Path):
    path = tmp_path / "still.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for _ in range(30):
        writer.write(np.full((48, 64, 3), 90, np.uint8))
    writer.release()
    camera = camera_config(f"file:{path}", pace=True, fps=60, frozen_after_s=0.1)
    thread, queues, status, _stop = start_capture(camera, lambda: VideoFileSource(str(path)))
    frames = drain(queues, 30, timeout_s=10)
    thread.join(5)
    assert len(frames) == 30 and status.snapshot().reconnects == 0


class SwitchableClassifier(FixedClassifier):
    """Slower than the camera until `fast` is set."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.fast = threading.Event()
        self._slow_s = delay_s

    def predict(self, batch):
        if not self.fast.is_set():
            self.fast.wait(self._slow_s)
        return super().predict(batch)


def camera_states(subscriber: Subscriber, camera: str = "cam0") -> list[str]:
    return [h["cameras"][camera]["state"] for h in subscriber.of_type("heartbeat")]


def test_slow_model_behind_a_fast_camera_is_blocked_not_reconnected_and_recovers():
    config = make_config([{"id": "cam0", "source": "synthetic", "fps": 30, "blocked_after_s": 0.5}],
                         batching={"max_batch": 1, "max_wait_ms": 0})
    classifier = SwitchableClassifier(delay_s=1.5)
    pipeline = Pipeline(config, classifier, threading.Event())
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint, topics=("heartbeat",))
    try:
        subscriber.collect_until(lambda _m: "blocked" in camera_states(subscriber), timeout_s=20)
        blocked_at = len(subscriber.messages)
        classifier.fast.set()
        subscriber.collect_until(lambda _m: camera_states(subscriber)[-1:] == ["streaming"]
                                 and len(subscriber.messages) > blocked_at, timeout_s=20)
    finally:
        pipeline.shutdown()
        subscriber.close()
    states = camera_states(subscriber)
    assert "blocked" in states
    assert states[-1] == "streaming"
    assert not {"reconnecting", "connecting"} & set(states[states.index("blocked"):])
    assert pipeline.statuses[0].snapshot().reconnects == 0


def test_a_camera_keeps_streaming_while_another_is_frozen():
    config = make_config([{"id": "good", "source": "usb:0"}, {"id": "stuck", "source": "usb:1", "frozen_after_s": 0.5}])
    factory = lambda camera: ScriptedSource(deque(["forever"]), still=camera.id == "stuck")  # noqa: E731
    pipeline = Pipeline(config, FixedClassifier(), threading.Event(), source_factory=factory)
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint)
    try:
        subscriber.collect_until(lambda _m: "frozen" in camera_states(subscriber, "stuck")
                                 and camera_states(subscriber, "good")[-1:] == ["streaming"], timeout_s=20)
        seen = len(subscriber.of_type("result"))
        subscriber.collect_until(lambda _m: len(subscriber.of_type("result")) > seen + 10, timeout_s=10)
    finally:
        pipeline.shutdown()
        subscriber.close()
    assert "frozen" in camera_states(subscriber, "stuck")
    assert not {"frozen", "reconnecting", "blocked"} & set(camera_states(subscriber, "good"))
    assert {p["camera"] for p in subscriber.of_type("result")[seen:]} >= {"good"}
