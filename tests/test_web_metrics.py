"""/metrics parses as Prometheus text and its counters move; /healthz follows the pipeline's health check."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream.pipeline.stats import WorkerStats
from tests.fakes import FixedClassifier, wait_for
from tests.test_health import StallingClassifier
from tests.webclient import TWO_CAMERAS, encoded_picture, web_pipeline


def scrape(client) -> dict[tuple[str, tuple], float]:
    reply = client.get("/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.body.decode())
        for sample in family.samples
    }


def per_camera(samples, name: str, camera: str) -> float:
    return samples[(name, (("camera", camera),))]


def test_metrics_parse_and_counters_move():
    with web_pipeline(FixedClassifier(), TWO_CAMERAS) as (pipeline, client):
        first = scrape(client)

        def grew(camera: str) -> bool:
            return pipeline.stats.classified(camera) > per_camera(first, "streamrec_frames_classified_total", camera) + 5

        assert wait_for(lambda: grew("cam0") and grew("cam1"), 20)
        assert client.post_raw("/predict", encoded_picture()).status == 200
        second = scrape(client)
    for camera in ("cam0", "cam1"):
        for name in ("streamrec_frames_captured_total", "streamrec_frames_classified_total"):
            assert per_camera(second, name, camera) > per_camera(first, name, camera), name
        assert per_camera(second, "streamrec_frames_dropped_total", camera) >= 0
        assert per_camera(second, "streamrec_camera_reconnects_total", camera) == 0
    assert second[("streamrec_inference_seconds_count", ())] > first[("streamrec_inference_seconds_count", ())]
    assert second[("streamrec_inference_seconds_bucket", (("le", "+Inf"),))] == second[("streamrec_inference_seconds_count", ())]
    assert second[("streamrec_batch_size_count", ())] == second[("streamrec_inference_seconds_count", ())]
    assert second[("streamrec_uploads_classified_total", ())] == 1
    assert second[("streamrec_http_predict_requests_total", (("code", "200"),))] == 1
    assert ("streamrec_publish_dropped_total", (("stage", "zmq"),)) in second
    assert second[("streamrec_published_messages_total", ())] > first[("streamrec_published_messages_total", ())]
    assert second[("streamrec_healthy", ())] == 1


def test_inference_histogram_counts_each_batch_in_the_first_bucket_at_or_above_it():
    stats = WorkerStats()
    for seconds in (0.004, 0.005, 0.02, 30.0):
        stats.record_batch(["cam0"], seconds)
    snap = stats.inference_seconds()
    cumulative = dict(zip(snap.bounds, snap.cumulative))
    assert (cumulative[0.005], cumulative[0.025], cumulative[10.0]) == (2, 3, 3)
    assert snap.cumulative[-1] == snap.count == 4
    assert snap.sum == pytest.approx(30.029)


def test_each_pipeline_has_its_own_registry():
    with web_pipeline() as (first, _client), web_pipeline() as (second, _other):
        assert first.web.metrics.registry is not second.web.metrics.registry


def test_healthz_is_200_while_the_pipeline_makes_progress():
    with web_pipeline() as (pipeline, client):
        assert wait_for(lambda: pipeline.stats.batches > 2, 20)
        reply = client.get("/healthz")
    assert reply.status == 200
    assert reply.json() == {"healthy": True, "reasons": [], "warnings": []}


def test_healthz_turns_503_with_the_reason_when_the_worker_stalls():
    classifier = StallingClassifier()
    with web_pipeline(classifier) as (pipeline, client):
        pipeline.health._worker_stall_s = 0.5
        try:
            assert wait_for(lambda: pipeline.stats.batches > 1, 20)
            classifier.stall.set()
            assert wait_for(lambda: client.get("/healthz").status == 503, 10)
            reply = client.get("/healthz")
        finally:
            classifier.release.set()
    assert reply.json()["healthy"] is False
    assert any("inference worker stuck" in reason for reason in reply.json()["reasons"])
