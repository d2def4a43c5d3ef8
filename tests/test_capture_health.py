"""The health check sees capture trouble that retrying cannot fix: a hung capture loop, readers stuck in a driver."""

import threading

from capture.thread import MAX_STUCK_READERS
from stream.pipeline.app import Pipeline
from tests.conftest import make_config
from tests.fakes import FixedClassifier, wait_for


def test_capture_loop_that_hangs_makes_the_pipeline_unhealthy():
    release = threading.Event()

    def hanging_factory(_camera):
        release.wait(30)  # building a source runs in the capture thread itself, unsupervised
        raise RuntimeError("released")

    pipeline = Pipeline(make_config(), FixedClassifier(), threading.Event(), source_factory=hanging_factory)
    pipeline.health._capture_stall_s = 0.5
    pipeline.start()
    try:
        assert wait_for(lambda: not pipeline.health.check().healthy, 10)
        reasons = pipeline.health.check().reasons
    finally:
        release.set()
        pipeline.shutdown()
    assert any("capture of cam0 stuck" in reason for reason in reasons)


def test_too_many_readers_stuck_in_the_driver_make_the_pipeline_unhealthy():
    pipeline = Pipeline(make_config(), FixedClassifier(), threading.Event())
    pipeline.start()
    try:
        assert wait_for(lambda: pipeline.health.check().healthy, 10)
        for _ in range(MAX_STUCK_READERS):
            pipeline.statuses[0].reader_abandoned()
        report = pipeline.health.check()
    finally:
        pipeline.shutdown()
    assert not report.healthy
    assert any(f"{MAX_STUCK_READERS} readers of cam0 are stuck" in reason for reason in report.reasons)
