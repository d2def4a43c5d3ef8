"""Parse camera source specs (`usb:0`, `/dev/video0`, `rtsp://…`, `file:PATH`, `synthetic`)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from config.redact import redact

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mjpeg", ".mjpg", ".ts", ".h264")
SYNTHETIC_SCENES = ("shapes", "lane", "hold")
_USB_INDEX = re.compile(r"^usb:(\d{1,3})$")
_V4L2_PATH = re.compile(r"^/dev/video\d{1,3}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_SPEC_CHARS = 2048


class SourceKind(str, enum.Enum):
    """What kind of camera a source spec names."""

    USB = "usb"
    RTSP = "rtsp"
    FILE = "file"
    SYNTHETIC = "synthetic"

    @property
    def is_live(self) -> bool:
        """Live cameras cannot be paused: a slow consumer must drop, never queue up lag."""
        return self in (SourceKind.USB, SourceKind.RTSP)


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source spec: the kind and what to open (index, path, URL or scene name)."""

    kind: SourceKind
    target: str

    @property
    def safe_text(self) -> str:
        """The spec as it may appear in logs and messages (credentials masked)."""
        return redact(self.target) if self.kind is SourceKind.RTSP else f"{self.kind.value}:{self.target}"


def parse_source_spec(text: str) -> SourceSpec:
    """Parse a source spec string; raise ValueError saying what forms are accepted."""
    spec = text.strip()
    if len(spec) > MAX_SPEC_CHARS:
        raise ValueError(f"source spec is {len(spec)} characters long; at most {MAX_SPEC_CHARS} are accepted")
    if _CONTROL.search(spec):
        raise ValueError(f"source spec {redact(spec)!r} contains control characters (a stray newline or NUL?)")
    if match := _USB_INDEX.match(spec):
        return SourceSpec(SourceKind.USB, match.group(1))
    if _V4L2_PATH.match(spec):
        return SourceSpec(SourceKind.USB, spec)
    lowered = spec.lower()
    if lowered.startswith(("rtsp://", "rtsps://")):
        _check_rtsp_url(spec)
        return SourceSpec(SourceKind.RTSP, spec)
    if lowered == "synthetic" or lowered.startswith("synthetic:"):
        scene = spec.partition(":")[2] or "shapes"
        if scene not in SYNTHETIC_SCENES:
            raise ValueError(f"unknown synthetic scene {scene!r}; use one of {', '.join(SYNTHETIC_SCENES)}")
        return SourceSpec(SourceKind.SYNTHETIC, scene)
    if lowered.startswith("file:"):
        path = spec[len("file:"):]
        if not path:
            raise ValueError("file: source needs a path, e.g. file:/var/lib/streamrec/lane.mp4")
        return SourceSpec(SourceKind.FILE, path)
    if "://" not in spec and (spec.startswith(("/", "./", "../", "~")) or Path(spec).suffix.lower() in VIDEO_SUFFIXES):
        return SourceSpec(SourceKind.FILE, spec)
    raise ValueError(
        f"unknown source spec {redact(spec)!r}; use usb:N, /dev/videoN, rtsp://host/path, file:PATH or synthetic"
    )


def _check_rtsp_url(url: str) -> None:
    """Refuse RTSP URLs FFmpeg could only fail on: no host, a bad port, or blanks inside (messages masked)."""
    if len(url.split("://", 1)[1].split("@")[-1].strip("/")) == 0:
        raise ValueError(f"RTSP URL {redact(url)!r} has no host")
    if any(char.isspace() for char in url):
        raise ValueError(f"RTSP URL {redact(url)!r} contains blanks; percent-encode them (%20)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in 0..65535
    except ValueError:
        raise ValueError(f"RTSP URL {redact(url)!r} has an invalid host or port") from None
    if not parts.hostname:
        raise ValueError(f"RTSP URL {redact(url)!r} has no host")
