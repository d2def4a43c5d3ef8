"""POST /predict: read one image (multipart field or raw body) within the size limit, decode it, classify it in the running worker."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from aiohttp import BodyPartReader, web

from stream.pipeline.uploads import UploadChannel
from stream.web.images import ImageRejected, decode_image
from stream.web.status import topk_json

CHUNK_BYTES = 64 * 1024
FORM_OVERHEAD_BYTES = 64 * 1024
"""A multipart body may exceed the image by this much (boundaries, part headers, other small fields)."""
CLASSIFY_TIMEOUT_S = 10.0
FILE_FIELDS = ("file", "image")


async def read_upload(request: web.Request, max_bytes: int) -> bytes:
    """The image bytes of a `multipart/form-data` request (field `file`, or any file part) or of a raw body."""
    too_large = ImageRejected(413, f"the upload is larger than {max_bytes / 1e6:g} MB (http.max_upload_mb)")
    if request.content_length is not None and request.content_length > max_bytes + FORM_OVERHEAD_BYTES:
        raise too_large
    if request.content_type == "multipart/form-data":
        data = await _read_form_file(request, max_bytes, too_large)
    else:
        data = await _read_limited(request.content.read, max_bytes, too_large)
    if not data:
        raise ImageRejected(400, "no image in the request: send it as the multipart field `file` or as the request body")
    return data


async def _read_form_file(request: web.Request, max_bytes: int, too_large: ImageRejected) -> bytes:
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and (part.filename or part.name in FILE_FIELDS):
            return await _read_limited(part.read_chunk, max_bytes, too_large)
        await part.release()
    return b""


async def _read_limited(read: Callable[[int], Awaitable[bytes]], max_bytes: int, too_large: ImageRejected) -> bytes:
    chunks, total = [], 0
    while chunk := await read(CHUNK_BYTES):
        total += len(chunk)
        if total > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def classify_upload(uploads: UploadChannel, data: bytes, model_id: str) -> dict[str, Any]:
    """Decode and classify (blocking: run it in an executor); the JSON answer of a successful /predict."""
    started = time.monotonic()
    image, info = decode_image(data)
    predictions = uploads.classify(image, CLASSIFY_TIMEOUT_S)
    return {
        "topk": topk_json(predictions),
        "model": model_id,
        "image": {"format": info.format, "width": info.width, "height": info.height},
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
    }
