"""Build the right source for a camera config."""

from __future__ import annotations

from typing import Callable

from capture.hold import HoldSource
from capture.lane import LaneSource
from capture.rtsp import rtsp_source
from capture.source import FrameSource
from capture.synthetic import DEFAULT_FPS, DEFAULT_SIZE, SyntheticSource
from capture.usb import usb_source
from capture.video_file import video_file_source
from config.schema import CameraConfig
from config.sources import SourceKind

SceneFactory = Callable[[CameraConfig], FrameSource]


def _scene_options(camera: CameraConfig) -> dict:
    """Size, rate and seed of a built-in scene, with the defaults filled in."""
    return {"width": camera.width or DEFAULT_SIZE[0], "height": camera.height or DEFAULT_SIZE[1],
            "fps": camera.fps or DEFAULT_FPS, "seed": camera.seed}


def synthetic_source(camera: CameraConfig) -> FrameSource:
    """The built-in moving-shapes scene."""
    return SyntheticSource(**_scene_options(camera))


def lane_source(camera: CameraConfig) -> FrameSource:
    """The checkout-lane scene of the demo catalog."""
    return LaneSource(**_scene_options(camera))


def hold_source(camera: CameraConfig) -> FrameSource:
    """A product the demo model does not know, held in front of the camera (for enrolling)."""
    return HoldSource(**_scene_options(camera))


class SourceFactory:
    """Makes a fresh source for a camera each time it is (re)opened; extra synthetic scenes plug in."""

    def __init__(self, scenes: dict[str, SceneFactory] | None = None) -> None:
        self._scenes: dict[str, SceneFactory] = {"shapes": synthetic_source, "lane": lane_source, "hold": hold_source,
                                                **(scenes or {})}

    def __call__(self, camera: CameraConfig) -> FrameSource:
        spec = camera.spec
        if spec.kind is SourceKind.USB:
            return usb_source(camera)
        if spec.kind is SourceKind.RTSP:
            return rtsp_source(camera)
        if spec.kind is SourceKind.FILE:
            return video_file_source(camera)
        if spec.target not in self._scenes:
            raise ValueError(f"synthetic scene {spec.target!r} is not available in this build")
        return self._scenes[spec.target](camera)
