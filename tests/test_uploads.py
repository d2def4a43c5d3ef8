"""Uploaded images go through the same worker and model as the cameras, and are not published as camera results."""

import threading
from collections import deque

import numpy as np
import pytest

from stream.pipeline.app import Pipeline
from stream.pipeline.uploads import UploadsBusy
from tests.conftest import make_config
from tests.fakes import FixedClassifier, ScriptedSource, Subscriber, tiny_classifier

IMAGE = np.full((120, 160, 3), 90, np.uint8)


def test_upload_is_classified_by_the_running_worker_and_not_published():
    classifier = FixedClassifier(pick=lambda _x: 2)
    pipeline = Pipeline(make_config(), classifier, threading.Event())
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint)
    try:
        subscriber.collect_until(lambda _m: len(subscriber.of_type("result")) >= 2, 10)
        predictions = pipeline.uploads.classify(IMAGE, timeout=10)
        subscriber.collect_until(lambda _m: False, 0.5)
    finally:
        pipeline.shutdown()
        subscriber.close()
    assert predictions[0].label == classifier.labels[2] and predictions[0].score > 0.99
    assert {payload["camera"] for payload in subscriber.of_type("result")} == {"cam0"}


def test_upload_is_classified_while_no_camera_delivers():
    config = make_config([{"id": "cam0", "source": "usb:0", "reconnect_initial_s": 0.2}])
    factory = lambda _c: ScriptedSource(deque(["fail"] * 100))  # noqa: E731
    pipeline = Pipeline(config, tiny_classifier(), threading.Event(), source_factory=factory)
    pipeline.start()
    try:
        predictions = pipeline.uploads.classify(IMAGE, timeout=10)
    finally:
        pipeline.shutdown()
    assert len(predictions) == 3 and abs(sum(p.score for p in predictions) - 1) < 0.5


def test_uploads_beyond_the_queue_are_refused_as_busy():
    stop = threading.Event()
    pipeline = Pipeline(make_config(), FixedClassifier(), stop)  # not started: nothing drains the queue
    pipeline.uploads._maxsize = 1
    waiter = threading.Thread(target=lambda: pytest.raises(TimeoutError, pipeline.uploads.classify, IMAGE, 1.0), daemon=True)
    waiter.start()
    threading.Event().wait(0.2)
    with pytest.raises(UploadsBusy):
        pipeline.uploads.classify(IMAGE, timeout=0.1)
    waiter.join(3)


def test_camera_ids_may_not_take_the_reserved_upload_id():
    from config.loader import ConfigError, validate

    with pytest.raises(ConfigError, match="cameras\\[0\\].id"):
        validate({"cameras": [{"id": "_upload", "source": "synthetic"}]})
