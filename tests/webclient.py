"""A real HTTP client (stdlib) for the web tests, and a pipeline with the web interface on a free loopback port."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Optional
from urllib.parse import urlsplit

import cv2
import numpy as np

from stream.pipeline.app import Pipeline
from tests.conftest import make_config
from tests.fakes import FixedClassifier

TWO_CAMERAS = [{"id": "cam0", "source": "synthetic"}, {"id": "cam1", "source": "synthetic", "seed": 1}]


@dataclass(frozen=True)
class Reply:
    """Status, headers and body of one HTTP exchange."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One connection per request, so replies never depend on keep-alive state."""

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> Reply:
        return self.request("GET", path, headers=headers)

    def post_raw(self, path: str, data: bytes, content_type: str = "application/octet-stream", **headers: str) -> Reply:
        return self.request("POST", path, data, {"Content-Type": content_type, **headers})

    def post_file(self, path: str, data: bytes, filename: str = "picture.jpg", field: str = "file",
                  content_type: str = "image/jpeg", **headers: str) -> Reply:
        body, form_type = multipart_body({field: (filename, data, content_type)})
        return self.request("POST", path, body, {"Content-Type": form_type, **headers})


def multipart_body(fields: dict[str, Any]) -> tuple[bytes, str]:
    """A multipart/form-data body: values are text, or (filename, bytes, content type) for files."""
    boundary = uuid.uuid4().hex
    chunks = []
    for name, value in fields.items():
        if isinstance(value, tuple):
            filename, data, content_type = value
            head = (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    f"Content-Type: {content_type}\r\n\r\n")
        else:
            head, data = f'Content-Disposition: form-data; name="{name}"\r\n\r\n', str(value).encode()
        chunks += [f"--{boundary}\r\n{head}".encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def encoded_picture(ext: str = ".jpg", size: tuple[int, int] = (240, 320), seed: int = 0) -> bytes:
    """A small noisy picture encoded with OpenCV (`.jpg`, `.png` or `.webp`)."""
    image = np.random.default_rng(seed).integers(0, 255, (*size, 3), np.uint8)
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


@contextlib.contextmanager
def web_pipeline(classifier=None, cameras=None, **http: Any) -> Iterator[tuple[Pipeline, Client]]:
    """A started pipeline (synthetic cameras) serving HTTP on a free loopback port; shut down afterwards."""
    config = make_config(cameras or [{"id": "cam0", "source": "synthetic"}],
                         http={"enabled": True, "listen": "127.0.0.1:0", **http})
    pipeline = Pipeline(config, classifier or FixedClassifier(), threading.Event())
    pipeline.start()
    try:
        yield pipeline, Client(pipeline.web.url)
    finally:
        pipeline.shutdown()
