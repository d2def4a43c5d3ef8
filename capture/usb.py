"""Open USB/V4L2 cameras (`usb:N` or `/dev/videoN`)."""

from __future__ import annotations

import cv2

from capture.opencv_source import OpenCVSource
from config.schema import CameraConfig


def usb_source(camera: CameraConfig) -> OpenCVSource:
    """A V4L2 camera with the requested size and rate, buffering as little as the driver allows."""
    target = camera.spec.target
    device: str | int = int(target) if target.isdigit() else target
    name = f"/dev/video{device}" if isinstance(device, int) else device
    settings: list[tuple[int, float]] = [(cv2.CAP_PROP_BUFFERSIZE, 1)]
    if camera.width:
        settings.append((cv2.CAP_PROP_FRAME_WIDTH, camera.width))
    if camera.height:
        settings.append((cv2.CAP_PROP_FRAME_HEIGHT, camera.height))
    if camera.fps:
        settings.append((cv2.CAP_PROP_FPS, camera.fps))
    return OpenCVSource(device, name, is_live=True, api=cv2.CAP_V4L2, settings=settings)
