"""Previews: encoded once per tick and shared by every viewer; served as JPEG frames and as an MJPEG stream."""

import asyncio
import http.client
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from capture.frame import Frame
from capture.status import CameraState, CameraStatus
from inference.topk import Prediction
from stream.overlay.latest import LatestResults
from stream.pipeline.result import Result
from stream.web.preview import PreviewHub
from tests.fakes import wait_for
from tests.webclient import TWO_CAMERAS, web_pipeline


def result(camera: str, seq: int, shade: int) -> Result:
    image = np.full((240, 320, 3), shade, np.uint8)
    frame = Frame(camera, seq, time.time(), time.monotonic(), image)
    return Result(frame, (Prediction("apple", 0, 0.9),), "test", time.monotonic())


def run_with_hub(scenario):
    """Run `scenario(hub, latest)` on a fresh event loop with the hub's ticker going; return its result and the encodes."""
    status = CameraStatus("cam0", "synthetic")
    status.set_state(CameraState.STREAMING)
    latest = LatestResults([status], lambda _camera: None, stale_after_s=5.0)
    latest.submit([result("cam0", 1, 60)])
    encodes: list[str] = []

    async def main():
        with ThreadPoolExecutor(1) as executor:
            hub = PreviewHub(latest, [status], fps=10, max_width=160, executor=executor, on_encoded=encodes.append)
            ticker = asyncio.create_task(hub.run())
            try:
                return await scenario(hub, latest)
            finally:
                hub.close()
                await ticker

    return asyncio.run(main()), encodes


def test_viewers_waiting_together_share_one_encoded_frame():
    async def three_viewers(hub, _latest):
        return await asyncio.gather(*(hub.next_frame("cam0", 0, 30) for _ in range(3)))

    frames, encodes = run_with_hub(three_viewers)
    assert frames[0] is not None and frames[0] is frames[1] is frames[2]
    assert encodes == ["cam0"]


def test_preview_is_scaled_to_the_configured_width():
    async def one_frame(hub, _latest):
        return await hub.next_frame("cam0", 0, 30)

    frame, _encodes = run_with_hub(one_frame)
    picture = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[:2] == (120, 160)


def test_a_new_result_gives_a_new_frame():
    async def two_results(hub, latest):
        first = await hub.next_frame("cam0", 0, 30)
        latest.submit([result("cam0", 2, 200)])
        second = await hub.next_frame("cam0", first.number, 30)
        return first, second

    (first, second), _encodes = run_with_hub(two_results)
    assert second.number > first.number
    assert second.jpeg != first.jpeg


def test_nothing_is_encoded_while_nobody_watches():
    with web_pipeline(cameras=TWO_CAMERAS) as (pipeline, client):
        assert wait_for(lambda: pipeline.stats.classified("cam1") > 20, 20)
        registry = pipeline.web.metrics.registry
        assert registry.get_sample_value("streamrec_preview_frames_encoded_total", {"camera": "cam0"}) is None
        assert client.get("/preview/cam0.jpg").status == 200
        assert registry.get_sample_value("streamrec_preview_frames_encoded_total", {"camera": "cam0"}) >= 1


def test_jpeg_preview_waits_for_a_frame_newer_than_asked():
    with web_pipeline(cameras=TWO_CAMERAS) as (_pipeline, client):
        first = client.get("/preview/cam1.jpg")
        number = int(first.headers["x-preview-frame"])
        second = client.get(f"/preview/cam1.jpg?after={number}")
    assert first.status == second.status == 200 and first.headers["content-type"] == "image/jpeg"
    assert int(second.headers["x-preview-frame"]) > number


def test_unknown_camera_is_404():
    with web_pipeline() as (_pipeline, client):
        assert client.get("/preview/cam9.jpg").status == 404
        assert client.get("/preview/cam9.mjpg").status == 404


def read_mjpeg_parts(response: http.client.HTTPResponse, count: int) -> list[bytes]:
    parts = []
    while len(parts) < count:
        assert response.readline() == b"--frame\r\n"
        headers = {}
        while (line := response.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(response.read(int(headers["content-length"])))
        assert response.read(2) == b"\r\n"
    return parts


def open_stream(url: str, path: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    host, port = url.split("//")[1].strip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", path)
    return connection, connection.getresponse()


def test_mjpeg_stream_sends_successive_annotated_jpegs():
    with web_pipeline(preview_width=320) as (pipeline, _client):
        connection, response = open_stream(pipeline.web.url, "/preview/cam0.mjpg")
        try:
            assert response.status == 200
            assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
            parts = read_mjpeg_parts(response, 3)
        finally:
            connection.close()
    pictures = [cv2.imdecode(np.frombuffer(part, np.uint8), cv2.IMREAD_COLOR) for part in parts]
    assert all(picture.shape == (240, 320, 3) for picture in pictures)
    assert len({part for part in parts}) == 3, "each part is a new frame"


def test_streams_beyond_max_viewers_are_refused():
    with web_pipeline(max_viewers=1) as (pipeline, client):
        connection, response = open_stream(pipeline.web.url, "/preview/cam0.mjpg")
        try:
            read_mjpeg_parts(response, 1)
            refused = client.get("/preview/cam0.mjpg")
        finally:
            connection.close()
    assert refused.status == 503 and "http.max_viewers" in refused.json()["error"]


def test_shutdown_ends_open_streams_and_joins_the_web_thread():
    with web_pipeline() as (pipeline, _client):
        connection, response = open_stream(pipeline.web.url, "/preview/cam0.mjpg")
        read_mjpeg_parts(response, 1)
        pipeline.web.stop()
        assert wait_for(lambda: not pipeline.web._thread.is_alive(), 10)
        remaining = response.read()  # the server closed the stream: read() returns instead of blocking
        connection.close()
    assert len(remaining) < 1_000_000
