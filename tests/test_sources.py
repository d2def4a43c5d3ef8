"""Source specs and credential redaction."""

import logging

import pytest

from config.redact import RedactingFormatter, redact
from config.sources import SourceKind, parse_source_spec


@pytest.mark.parametrize(
    "text, kind, target",
    [
        ("usb:0", SourceKind.USB, "0"),
        ("/dev/video2", SourceKind.USB, "/dev/video2"),
        ("rtsp://cam.local:554/stream1", SourceKind.RTSP, "rtsp://cam.local:554/stream1"),
        ("file:/data/lane.mp4", SourceKind.FILE, "/data/lane.mp4"),
        ("lane.mp4", SourceKind.FILE, "lane.mp4"),
        ("./clips/x.avi", SourceKind.FILE, "./clips/x.avi"),
        ("synthetic", SourceKind.SYNTHETIC, "shapes"),
    ],
)
def test_source_specs_parse(text, kind, target):
    spec = parse_source_spec(text)
    assert (spec.kind, spec.target) == (kind, target)


@pytest.mark.parametrize("text", ["webcam", "usb:x", "rtsp://", "file:", "synthetic:moon", "http://x/y.mp4"])
def test_bad_source_specs_are_refused(text):
    with pytest.raises(ValueError):
        parse_source_spec(text)


@pytest.mark.parametrize(
    "url, secret",
    [
        ("rtsp://admin:hunter2@10.0.0.5/stream", "hunter2"),
        ("rtsp://admin:p%21ss@cam/stream", "p%21ss"),
        ("rtsp://admin:p@ss@cam/stream", "p@ss"),
        ("rtsp://cam/stream?user=a&password=s3cret", "s3cret"),
    ],
)
def test_redaction_removes_credentials(url, secret):
    cleaned = redact(f"cannot open {url} now")
    assert secret not in cleaned
    assert "cam" in cleaned or "10.0.0.5" in cleaned


def test_safe_text_of_rtsp_spec_hides_password():
    assert "hunter2" not in parse_source_spec("rtsp://u:hunter2@cam/s").safe_text


def test_log_formatter_redacts_messages_and_tracebacks():
    formatter = RedactingFormatter("%(message)s")
    try:
        raise RuntimeError("failed rtsp://u:hunter2@cam/s")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "open %s", ("rtsp://u:hunter2@cam/s",), sys.exc_info())
    text = formatter.format(record)
    assert "hunter2" not in text
    assert "RuntimeError" in text


@pytest.mark.parametrize("url, address", [
    ("rtsp://user:secret@10.0.0.7/stream1", ("10.0.0.7", 554)),
    ("rtsps://cam.local:8322/live", ("cam.local", 8322)),
    ("RTSP://[::1]/x", ("::1", 554)),
    ("rtsp:///nohost", None),
])
def test_the_probe_address_of_an_rtsp_url(url, address):
    from capture.rtsp import server_address

    assert server_address(url) == address


def test_a_camera_whose_server_refuses_fails_fast_without_ffmpeg_and_without_credentials():
    import socket

    from capture.rtsp import rtsp_source
    from capture.source import SourceError
    from config.schema import CameraConfig

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    source = rtsp_source(CameraConfig(id="cam", source=f"rtsp://admin:hunter2@127.0.0.1:{port}/s"))
    with pytest.raises(SourceError, match=f"127.0.0.1:{port} does not answer") as caught:
        source.open()
    assert "hunter2" not in str(caught.value)
