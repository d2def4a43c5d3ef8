"""Uploaded image bytes to a BGR array: check format, size and completeness from the header, then decode with OpenCV."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_PIXELS = 50_000_000
"""Larger pictures are refused before decoding: a small file can claim huge dimensions (a decompression bomb)."""
REDUCED_MIN_SIDE = 512
"""Big JPEGs are decoded at 1/2, 1/4 or 1/8 scale as long as the shorter side keeps at least this many pixels."""
FORMATS = "JPEG, PNG or WebP"
_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP"}
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_REDUCED_FLAGS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


class ImageRejected(Exception):
    """The upload is not a usable image; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: format and dimensions."""

    format: str
    width: int
    height: int


def read_header(data: bytes) -> ImageInfo:
    """Format and dimensions from the first bytes; raise ImageRejected when it is no JPEG/PNG/WebP or cut short."""
    if data.startswith(b"\xff\xd8"):
        return _jpeg_header(data)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png_header(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_header(data)
    raise ImageRejected(415, f"not a {FORMATS} image")


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, ImageInfo]:
    """The BGR image of an upload and its header info; raise ImageRejected saying what is wrong."""
    if not data:
        raise ImageRejected(400, "the upload is empty")
    info = read_header(data)
    if info.width <= 0 or info.height <= 0:
        raise ImageRejected(400, f"the {_NAMES[info.format]} header gives no picture size")
    if info.width * info.height > max_pixels:
        raise ImageRejected(
            413, f"the image is {info.width}x{info.height} pixels ({info.width * info.height / 1e6:.0f} megapixels); "
                 f"the limit is {max_pixels / 1e6:.0f} megapixels: scale it down"
        )
    flag = _reduced_flag(info) if info.format == "jpeg" else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None or image.size == 0:
        raise ImageRejected(400, f"the {_NAMES[info.format]} image is damaged and cannot be decoded")
    return image, info


def _reduced_flag(info: ImageInfo) -> int:
    """Decode big JPEGs at a fraction of their size: the model sees 256 pixels or so anyway, and it is much faster."""
    shorter = min(info.width, info.height)
    for factor, flag in _REDUCED_FLAGS:
        if shorter // factor >= REDUCED_MIN_SIDE:
            return flag
    return cv2.IMREAD_COLOR


def _truncated(fmt: str) -> ImageRejected:
    return ImageRejected(400, f"the {fmt} image is truncated (the upload ended early)")


def _jpeg_header(data: bytes) -> ImageInfo:
    """Walk the JPEG segments to the frame header (size) and the scan; a complete file ends with EOI after the scan."""
    pos, size = 2, None
    while True:
        if pos + 4 > len(data):
            raise _truncated("JPEG")
        if data[pos] != 0xFF:
            raise ImageRejected(400, "the JPEG image is damaged (bad segment marker)")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                raise _truncated("JPEG")
            size = (int.from_bytes(data[pos + 7:pos + 9], "big"), int.from_bytes(data[pos + 5:pos + 7], "big"))
        elif marker == 0xDA:  # start of scan: entropy-coded data follows, ending with EOI
            if size is None:
                raise ImageRejected(400, "the JPEG image is damaged (no frame header)")
            if data.rfind(b"\xff\xd9") < pos:
                raise _truncated("JPEG")
            return ImageInfo("jpeg", *size)
        pos += 2 + length


def _png_header(data: bytes) -> ImageInfo:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise _truncated("PNG") if len(data) < 24 else ImageRejected(400, "the PNG image is damaged (no IHDR)")
    if b"IEND" not in data[-12:]:
        raise _truncated("PNG")
    return ImageInfo("png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))


def _webp_header(data: bytes) -> ImageInfo:
    if len(data) < int.from_bytes(data[4:8], "little") + 8 or len(data) < 30:
        raise _truncated("WebP")
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
    elif chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    else:
        raise ImageRejected(400, "the WebP image is damaged (unknown chunk)")
    return ImageInfo("webp", width, height)
