"""The whole pipeline in-process with real threads and a real ZeroMQ subscriber on loopback."""

import threading
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream.pipeline.app import Pipeline, RunOutcome
from tests.conftest import make_config
from tests.fakes import (
    FixedClassifier,
    RecordingSink,
    ScriptedSource,
    Subscriber,
    run_until_results,
    tiny_classifier,
    wait_for,
)

RESULT_FIELDS = {"v", "type", "seq", "ts", "boot", "camera", "frame_seq", "captured_at", "latency_ms", "model", "topk"}


def started(pipeline: Pipeline):
    pipeline.start()
    return Subscriber(pipeline.publisher.endpoint)


def results_per_camera(subscriber: Subscriber) -> dict[str, int]:
    counts: dict[str, int] = {}
    for payload in subscriber.of_type("result"):
        counts[payload["camera"]] = counts.get(payload["camera"], 0) + 1
    return counts


def assert_valid_result(payload: dict, labels) -> None:
    assert RESULT_FIELDS <= set(payload)
    assert payload["v"] == 1 and payload["type"] == "result"
    assert 0 <= payload["latency_ms"] < 5000
    assert abs(payload["captured_at"] - time.time()) < 60
    scores = [entry["score"] for entry in payload["topk"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(entry["label"] == labels[entry["index"]] for entry in payload["topk"])


def test_synthetic_cameras_publish_valid_results_and_heartbeats():
    config = make_config([{"id": "cam0", "source": "synthetic"}, {"id": "cam1", "source": "synthetic", "seed": 1}],
                         model={"top_k": 3})
    classifier = tiny_classifier()
    pipeline = Pipeline(config, classifier, threading.Event())
    subscriber = started(pipeline)
    try:
        subscriber.collect_until(
            lambda _m: min(results_per_camera(subscriber).values() or [0]) >= 10 and len(subscriber.of_type("heartbeat")) >= 2
            and len(results_per_camera(subscriber)) == 2, timeout_s=20)
    finally:
        pipeline.shutdown()
        subscriber.close()
    results = subscriber.of_type("result")
    assert set(results_per_camera(subscriber)) == {"cam0", "cam1"}
    for payload in results:
        assert_valid_result(payload, classifier.labels)
        assert len(payload["topk"]) == 3
    seqs = [payload["seq"] for _topic, payload in subscriber.messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq must increase by one without gaps"
    assert len({payload["boot"] for _t, payload in subscriber.messages}) == 1
    heartbeat = subscriber.of_type("heartbeat")[-1]
    assert set(heartbeat["cameras"]) == {"cam0", "cam1"}
    assert heartbeat["cameras"]["cam0"]["state"] == "streaming"
    assert heartbeat["cameras"]["cam0"]["classified"] > 0


def write_video(path: Path, frames: int, size=(160, 120)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for index in range(frames):
        image = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.circle(image, (10 + index * 5, 60), 15, (0, 0, 255), -1)
        writer.write(image)
    writer.release()
    return path


def test_video_file_every_frame_is_classified_and_the_run_ends(tmp_path):
    video = write_video(tmp_path / "lane.avi", 25)
    config = make_config([{"id": "lane", "source": f"file:{video}", "pace": False}])
    recorder = RecordingSink()
    pipeline = Pipeline(config, tiny_classifier(), threading.Event(), extra_sinks=[recorder])
    subscriber = started(pipeline)
    try:
        outcome = pipeline.wait(duration=30)
        subscriber.collect_until(lambda _m: any(p["frame_seq"] == 25 for p in subscriber.of_type("result")), 5)
    finally:
        pipeline.shutdown()
        subscriber.close()
    assert outcome is RunOutcome.SOURCES_ENDED
    assert [r.frame.seq for r in recorder.results] == list(range(1, 26))
    assert any(p["frame_seq"] == 25 for p in subscriber.of_type("result"))


def test_two_cameras_share_batches():
    config = make_config([{"id": "a", "source": "synthetic"}, {"id": "b", "source": "synthetic"}],
                         batching={"max_batch": 8, "max_wait_ms": 30})
    recorder = RecordingSink()
    pipeline = Pipeline(config, FixedClassifier(), threading.Event(), extra_sinks=[recorder])
    pipeline.start()
    try:
        wait_for(lambda: any({r.camera for r in batch} == {"a", "b"} for batch in recorder.batches), 10)
    finally:
        pipeline.shutdown()
    assert any({r.camera for r in batch} == {"a", "b"} for batch in recorder.batches)


def test_slow_model_drops_old_frames_and_latency_stays_bounded():
    config = make_config([{"id": "cam0", "source": "synthetic", "fps": 60, "queue_size": 2}],
                         batching={"max_batch": 1, "max_wait_ms": 0})
    pipeline = Pipeline(config, FixedClassifier(delay_s=0.1), threading.Event())
    subscriber = run_until_results(pipeline, 15)
    latencies = [p["latency_ms"] for p in subscriber.of_type("result")]
    assert len(latencies) >= 15
    # queue of 2 + one frame in the model: a result is at most ~3 model calls old, never growing with time
    assert max(latencies[5:]) < 600
    assert max(h["cameras"]["cam0"]["dropped"] for h in subscriber.of_type("heartbeat")) > 0


def test_camera_fault_is_reported_in_heartbeats_and_results_resume():
    script = deque([15, "fail", "fail", "forever"])
    config = make_config([{"id": "cam0", "source": "usb:0", "reconnect_initial_s": 0.3, "reconnect_max_s": 0.4}])
    factory = lambda _camera: ScriptedSource(script)  # noqa: E731 - one camera, one shared script
    pipeline = Pipeline(config, FixedClassifier(), threading.Event(), source_factory=factory)
    subscriber = started(pipeline)

    def states():
        return [h["cameras"]["cam0"]["state"] for h in subscriber.of_type("heartbeat")]

    def recovered(_messages):
        seen = states()
        return "reconnecting" in seen and seen[-1] == "streaming" and max_frame_seq() > 20

    def max_frame_seq():
        return max([p["frame_seq"] for p in subscriber.of_type("result")] or [0])

    try:
        subscriber.collect_until(recovered, timeout_s=20)
    finally:
        pipeline.shutdown()
        subscriber.close()
    seen = states()
    assert "reconnecting" in seen
    assert seen.index("reconnecting") < len(seen) - 1 - seen[::-1].index("streaming")
    assert max_frame_seq() > 20


class ExplodingSink:
    def submit(self, results):
        raise RuntimeError("sink broke")


def test_a_failing_sink_does_not_stop_the_others():
    recorder = RecordingSink()
    pipeline = Pipeline(make_config(), FixedClassifier(), threading.Event(), extra_sinks=[ExplodingSink(), recorder])
    pipeline.start()
    try:
        assert wait_for(lambda: len(recorder.results) >= 5, 10)
    finally:
        pipeline.shutdown()


def test_heartbeats_continue_when_no_camera_delivers():
    script = deque(["fail"] * 1000)
    config = make_config([{"id": "cam0", "source": "usb:0", "reconnect_initial_s": 0.1, "reconnect_max_s": 0.2}])
    pipeline = Pipeline(config, FixedClassifier(), threading.Event(), source_factory=lambda _c: ScriptedSource(script))
    subscriber = started(pipeline)
    try:
        subscriber.collect_until(lambda _m: len(subscriber.of_type("heartbeat")) >= 4, timeout_s=10)
    finally:
        pipeline.shutdown()
        subscriber.close()
    heartbeats = subscriber.of_type("heartbeat")
    assert len(heartbeats) >= 4 and not subscriber.of_type("result")
    assert heartbeats[-1]["cameras"]["cam0"]["state"] == "connecting"
    gaps = [b["ts"] - a["ts"] for a, b in zip(heartbeats, heartbeats[1:])]
    assert max(gaps) <= 1.0


@pytest.mark.parametrize("endpoint_kind", ["ipc"])
def test_ipc_endpoint_works(tmp_path, endpoint_kind):
    config = make_config(publisher={"endpoint": f"ipc://{tmp_path}/streamrec.sock"})
    pipeline = Pipeline(config, FixedClassifier(), threading.Event())
    assert len(run_until_results(pipeline, 3, 10).of_type("result")) >= 3


class WatchingClassifier(FixedClassifier):
    """A slow model that notes whether the next batch was already prepared while it was running."""

    def __init__(self):
        super().__init__(delay_s=0.15)
        self.worker = None
        self.prepared_during_call: list[int] = []

    def predict(self, batch):
        logits = super().predict(batch)
        self.prepared_during_call.append(self.worker._preparer.ready.qsize())
        return logits


def test_next_batch_is_preprocessed_while_the_model_runs():
    classifier = WatchingClassifier()
    config = make_config([{"id": "cam0", "source": "synthetic", "fps": 60}], batching={"max_batch": 2}, model={"lanes": 1})
    pipeline = Pipeline(config, classifier, threading.Event())
    classifier.worker = pipeline.worker
    pipeline.start()
    try:
        wait_for(lambda: len(classifier.prepared_during_call) >= 6, 20)
    finally:
        pipeline.shutdown()
    assert max(classifier.prepared_during_call) == 1


class OverlapCountingClassifier(FixedClassifier):
    """Slow on every other call, so model lanes finish out of order; records how many calls ran at once."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._calls = 0
        self._running = 0
        self.most_at_once = 0

    def predict(self, batch):
        with self._lock:
            self._calls += 1
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
            slow = self._calls % 2 == 1
        time.sleep(0.04 if slow else 0.002)
        try:
            return super().predict(batch)
        finally:
            with self._lock:
                self._running -= 1


def test_model_lanes_run_batches_at_once_and_every_camera_keeps_its_order():
    cameras = [{"id": name, "source": "synthetic", "pace": False} for name in ("a", "b")]
    config = make_config(cameras, batching={"max_batch": 2, "max_wait_ms": 0}, model={"lanes": 3})
    classifier, recorder = OverlapCountingClassifier(), RecordingSink()
    pipeline = Pipeline(config, classifier, threading.Event(), extra_sinks=[recorder])
    pipeline.start()
    try:
        wait_for(lambda: len(recorder.results) >= 80, 20)
    finally:
        pipeline.shutdown()
    assert classifier.most_at_once >= 2
    for camera in ("a", "b"):
        seqs = [r.frame.seq for r in recorder.results if r.camera == camera]
        assert len(seqs) >= 20 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # block policy: none lost


def test_batches_are_delivered_in_the_order_they_were_taken():
    from stream.pipeline.worker import ClassifiedBatch, InOrderDelivery

    delivered = []
    deliver = InOrderDelivery(lambda batch: delivered.append(batch.sequence))
    for sequence in (2, 0, 3, 1, 4):
        deliver(ClassifiedBatch(sequence, None if sequence == 1 else [], []))
    assert delivered == [0, 1, 2, 3, 4]
