"""Open RTSP cameras through OpenCV's FFmpeg backend with bounded open and read times."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import cv2

from capture.opencv_source import OpenCVSource
from capture.source import SourceError
from config.redact import redact
from config.schema import CameraConfig

FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
DEFAULT_FFMPEG_OPTIONS = "rtsp_transport;tcp"
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
PROBE_TIMEOUT_S = 1.0


class RtspSource(OpenCVSource):
    """An OpenCVSource that first checks the server accepts a TCP connection: while a camera is down, each retry
    (every `reconnect_max_s` at most) costs one refused connection, not an FFmpeg open and its error line."""

    def __init__(self, *args, probe_timeout_s: float = PROBE_TIMEOUT_S, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._probe_timeout_s = probe_timeout_s

    def open(self) -> None:
        address = server_address(str(self._target))
        if address is not None:
            try:
                socket.create_connection(address, timeout=self._probe_timeout_s).close()
            except OSError as exc:
                raise SourceError(f"cannot open {self.name}: {address[0]}:{address[1]} does not answer "
                                  f"({exc.strerror or type(exc).__name__})") from None
        super().open()


def server_address(url: str) -> tuple[str, int] | None:
    """(host, port) of an rtsp:// or rtsps:// URL (default ports 554 and 322), or None when it has no host."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname and port else None


def rtsp_source(camera: CameraConfig) -> OpenCVSource:
    """An RTSP source over TCP that gives up opening and reading after the configured timeouts."""
    # OpenCV reads this variable at open time; TCP survives lossy links without smeared frames.
    os.environ.setdefault(FFMPEG_OPTIONS_ENV, DEFAULT_FFMPEG_OPTIONS)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(camera.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(camera.read_timeout_s * 1000),
    ]
    return RtspSource(camera.spec.target, redact(camera.spec.target), is_live=True, api=cv2.CAP_FFMPEG, params=params,
                      probe_timeout_s=min(PROBE_TIMEOUT_S, camera.open_timeout_s))
