"""POST /predict over real HTTP: uploads go through the running worker; bad uploads get a 4xx JSON error."""

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from tests.fakes import FixedClassifier, wait_for
from tests.webclient import TWO_CAMERAS, encoded_picture, multipart_body, web_pipeline

FORMATS = [(".jpg", "jpeg"), (".png", "png"), (".webp", "webp")]
PICKED = 2


@pytest.fixture(scope="module")
def served():
    with web_pipeline(FixedClassifier(pick=lambda _x: PICKED)) as running:
        yield running


def assert_topk(answer: dict) -> None:
    topk = answer["topk"]
    assert [set(entry) for entry in topk] == [{"label", "index", "score", "source"}] * len(topk)
    assert topk[0]["index"] == PICKED and topk[0]["label"] == FixedClassifier().labels[PICKED]
    scores = [entry["score"] for entry in topk]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert answer["model"] == FixedClassifier.model_id


@pytest.mark.parametrize("ext, fmt", FORMATS)
def test_multipart_upload_gets_the_top_k_of_the_running_model(served, ext, fmt):
    _pipeline, client = served
    reply = client.post_file("/predict", encoded_picture(ext), filename=f"p{ext}", content_type=f"image/{fmt}")
    assert reply.status == 200, reply.body
    assert_topk(reply.json())
    assert reply.json()["image"] == {"format": fmt, "width": 320, "height": 240}


@pytest.mark.parametrize("ext, fmt", FORMATS)
def test_raw_body_upload_gets_the_top_k_of_the_running_model(served, ext, fmt):
    _pipeline, client = served
    reply = client.post_raw("/predict", encoded_picture(ext), f"image/{fmt}")
    assert reply.status == 200, reply.body
    assert_topk(reply.json())


def test_uploads_are_classified_by_the_camera_worker(served):
    pipeline, client = served
    before = pipeline.stats.classified("_upload")
    assert client.post_raw("/predict", encoded_picture()).status == 200
    assert pipeline.stats.classified("_upload") == before + 1


def test_text_is_refused_as_not_an_image(served):
    reply = served[1].post_file("/predict", b"name,price\nmilk,1.20\n", filename="prices.csv", content_type="text/csv")
    assert reply.status == 415
    assert "not a JPEG, PNG or WebP image" in reply.json()["error"]


@pytest.mark.parametrize("ext, fmt", FORMATS)
def test_truncated_image_is_refused(served, ext, fmt):
    data = encoded_picture(ext)
    reply = served[1].post_raw("/predict", data[: len(data) * 2 // 3])
    assert reply.status == 400
    assert "truncated" in reply.json()["error"]


@pytest.mark.parametrize("as_form", [False, True])
def test_upload_over_ten_megabytes_is_refused(served, as_form):
    data = encoded_picture() + bytes(10_100_000)
    client = served[1]
    reply = client.post_file("/predict", data) if as_form else client.post_raw("/predict", data, "image/jpeg")
    assert reply.status == 413
    assert "larger than 10 MB" in reply.json()["error"]


def test_form_without_a_file_is_refused(served):
    body, content_type = multipart_body({"comment": "no picture here"})
    reply = served[1].request("POST", "/predict", body, {"Content-Type": content_type})
    assert reply.status == 400
    assert "no image" in reply.json()["error"]


def test_empty_body_is_refused(served):
    reply = served[1].post_raw("/predict", b"")
    assert reply.status == 400
    assert "no image" in reply.json()["error"]


def test_decompression_bomb_is_refused_before_decoding(served):
    ok, png = cv2.imencode(".png", np.zeros((9000, 9000, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    reply = served[1].post_raw("/predict", png.tobytes(), "image/png")
    assert reply.status == 413
    assert "9000x9000 pixels" in reply.json()["error"] and "megapixels" in reply.json()["error"]


def test_busy_recognizer_answers_503_and_the_service_keeps_running(served):
    pipeline, client = served
    pipeline.uploads._maxsize = 0  # every upload finds the queue "full"
    try:
        reply = client.post_raw("/predict", encoded_picture())
    finally:
        pipeline.uploads._maxsize = 16
    assert reply.status == 503 and reply.headers["retry-after"] == "1"
    assert "busy" in reply.json()["error"]
    assert client.get("/healthz").status == 200
    assert client.post_raw("/predict", encoded_picture()).status == 200


@pytest.mark.slow
def test_twenty_concurrent_uploads_are_answered_while_both_cameras_keep_flowing():
    cameras = ("cam0", "cam1")
    pictures = [encoded_picture(ext, size=(480, 640), seed=i) for i, (ext, _fmt) in enumerate(FORMATS * 7)][:20]
    with web_pipeline(FixedClassifier(pick=lambda _x: PICKED), TWO_CAMERAS) as (pipeline, client):
        assert wait_for(lambda: min(pipeline.stats.classified(c) for c in cameras) >= 5, 30)
        before = {c: pipeline.stats.classified(c) for c in cameras}
        with ThreadPoolExecutor(len(pictures)) as pool:
            replies = list(pool.map(lambda data: client.post_raw("/predict", data), pictures))
        during = {c: pipeline.stats.classified(c) for c in cameras}
    assert [reply.status for reply in replies] == [200] * 20, [reply.body for reply in replies if reply.status != 200]
    for reply in replies:
        assert_topk(reply.json())
    assert all(during[c] > before[c] for c in cameras), (before, during)
    # Every captured frame was classified or counted as dropped (a few may still sit in a queue or the last batch).
    batching = pipeline.config.batching.max_batch
    for status, camera in zip(pipeline.statuses, pipeline.config.cameras):
        snap = status.snapshot()
        unaccounted = snap.captured - snap.dropped - pipeline.stats.classified(snap.camera)
        assert 0 <= unaccounted <= camera.queue_size + batching, snap
