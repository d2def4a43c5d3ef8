"""Pipeline health: progress of worker, publisher and capture threads (the watchdog's and /healthz's notion)."""

import threading
import time

from stream.pipeline.app import Pipeline
from tests.conftest import make_config
from tests.fakes import FixedClassifier, wait_for


class StallingClassifier(FixedClassifier):
    """Answers normally until `stall` is set, then hangs (until released) like a wedged model call."""

    def __init__(self):
        super().__init__()
        self.stall = threading.Event()
        self.release = threading.Event()

    def predict(self, batch):
        if self.stall.is_set():
            self.release.wait(20)
        return super().predict(batch)


def test_running_pipeline_is_healthy():
    pipeline = Pipeline(make_config(), FixedClassifier(), threading.Event())
    pipeline.start()
    try:
        assert wait_for(lambda: pipeline.stats.batches > 3, 10)
        report = pipeline.health.check()
    finally:
        pipeline.shutdown()
    assert report.healthy, report.reasons


def test_stuck_worker_makes_the_pipeline_unhealthy():
    classifier = StallingClassifier()
    pipeline = Pipeline(make_config(), classifier, threading.Event())
    pipeline.health._worker_stall_s = 0.5
    pipeline.start()
    try:
        assert wait_for(lambda: pipeline.stats.batches > 1, 10)
        classifier.stall.set()
        assert wait_for(lambda: not pipeline.health.check().healthy, 5)
        reasons = pipeline.health.check().reasons
    finally:
        classifier.release.set()
        pipeline.shutdown()
    assert any("inference worker stuck" in reason for reason in reasons)


def test_stopped_pipeline_is_unhealthy():
    pipeline = Pipeline(make_config(), FixedClassifier(), threading.Event())
    pipeline.start()
    pipeline.shutdown()
    time.sleep(0.1)
    assert not pipeline.health.check().healthy
