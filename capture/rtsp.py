"""Open RTSP cameras through OpenCV's FFmpeg backend with bounded open and read times."""

from __future__ import annotations

import os

import cv2

from capture.opencv_source import OpenCVSource
from config.redact import redact
from config.schema import CameraConfig

FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
DEFAULT_FFMPEG_OPTIONS = "rtsp_transport;tcp"


def rtsp_source(camera: CameraConfig) -> OpenCVSource:
    """An RTSP source over TCP that gives up opening and reading after the configured timeouts."""
    # OpenCV reads this variable at open time; TCP survives lossy links without smeared frames.
    os.environ.setdefault(FFMPEG_OPTIONS_ENV, DEFAULT_FFMPEG_OPTIONS)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(camera.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(camera.read_timeout_s * 1000),
    ]
    return OpenCVSource(camera.spec.target, redact(camera.spec.target), is_live=True, api=cv2.CAP_FFMPEG, params=params)
