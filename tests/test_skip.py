"""Skipping unchanged frames: a static picture reuses its result, a changing one does not, N frames force a re-run."""

import threading
from collections import deque

import numpy as np

from stream.pipeline.app import Pipeline
from stream.pipeline.skip import ChangeDetector
from tests.conftest import make_config
from tests.fakes import FixedClassifier, RecordingSink, ScriptedSource, Subscriber, wait_for


def run_static(skip: dict, count: int = 40):
    config = make_config([{"id": "cam0", "source": "usb:0"}], skip=skip, batching={"max_batch": 1})
    classifier = FixedClassifier()
    recorder = RecordingSink()
    source = lambda _c: ScriptedSource(deque(["forever"]))  # noqa: E731 - the same picture every frame
    pipeline = Pipeline(config, classifier, threading.Event(), source_factory=source, extra_sinks=[recorder])
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint, topics=["result/"])
    try:
        wait_for(lambda: len(recorder.results) >= count, 20)
        subscriber.collect_until(lambda m: len(m) >= 5, 10)
    finally:
        pipeline.shutdown()
        subscriber.close()
    return recorder.results, classifier, subscriber, pipeline


def test_static_picture_reuses_results_and_says_so_on_the_wire():
    results, classifier, subscriber, pipeline = run_static({"enabled": "auto", "max_reuse": 10})
    reused = [r for r in results if r.reused]
    assert len(reused) > len(results) * 0.8
    assert sum(classifier.batch_sizes) < len(results) * 0.2
    assert any(p.get("reused") is True for p in subscriber.of_type("result"))
    assert pipeline.stats.reused("cam0") == len(reused)


def test_reuse_is_forced_off_every_max_reuse_frames():
    results, _classifier, _subscriber, _pipeline = run_static({"enabled": "on", "max_reuse": 5})
    runs, longest = 0, 0
    for result in results:
        runs = runs + 1 if result.reused else 0
        longest = max(longest, runs)
    assert longest == 5


def test_skipping_off_classifies_every_frame():
    results, classifier, _subscriber, _pipeline = run_static({"enabled": "off"})
    assert not any(r.reused for r in results)
    assert sum(classifier.batch_sizes) >= len(results)


def test_changed_picture_is_classified_again():
    config = make_config(skip={"enabled": "on", "threshold": 2.0})
    detector = ChangeDetector.from_config(config)
    from capture.frame import Frame
    from inference.topk import Prediction
    from stream.pipeline.result import Result

    dark = np.full((48, 64, 3), 20, np.uint8)
    frame = Frame("cam0", 1, 0.0, 0.0, dark)
    assert detector.reuse(frame)[0] is None
    _, thumb = detector.reuse(frame)
    detector.remember(Result(frame, (Prediction("a", 0, 1.0),), "m", 0.0), thumb)
    assert detector.reuse(Frame("cam0", 2, 0.0, 0.0, dark + 1))[0] is not None  # sensor-noise-sized change
    assert detector.reuse(Frame("cam0", 3, 0.0, 0.0, dark + 60))[0] is None  # a product arrived


def test_auto_skips_only_live_cameras():
    config = make_config([{"id": "usb", "source": "usb:0"}, {"id": "syn", "source": "synthetic"}])
    assert ChangeDetector.from_config(config)._cameras == {"usb"}
