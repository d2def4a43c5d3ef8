"""Keep OpenCV's and FFmpeg's own stderr output free of camera credentials.

What they print bypasses Python logging (and so our redaction). Measured with this OpenCV 5.0 build:
FFmpeg at its default level (error) prints e.g. "method DESCRIBE failed: 401 (Unauthorized)", no URL;
at trace level (56) it prints every RTSP request, "Authorization: Basic <base64 user:password>" included;
OPENCV_VIDEOIO_DEBUG / OPENCV_VIDEOCAPTURE_DEBUG print "trying capture filename='rtsp://user:pass@…'"
as OpenCV warnings. FFmpeg's level is read at the first capture opened, so this must run before that;
the debug switches are read when cv2 loads, so they are answered by keeping OpenCV's logger at ERROR.
"""

from __future__ import annotations

import logging
import os
from typing import MutableMapping

import cv2

log = logging.getLogger(__name__)

FFMPEG_LEVEL_ENV = "OPENCV_FFMPEG_LOGLEVEL"
FFMPEG_MAX_SAFE_LEVEL = 48
"""AV_LOG_DEBUG: the most FFmpeg may print; trace (56) dumps RTSP requests with their Authorization header."""
URL_PRINTING_ENV = ("OPENCV_VIDEOIO_DEBUG", "OPENCV_VIDEOCAPTURE_DEBUG")
OPENCV_LEVEL_ENV = "OPENCV_LOG_LEVEL"


def keep_credentials_out_of_native_logs(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Cap FFmpeg's log level, switch off OpenCV's URL-printing debug switches, and quiet OpenCV's own
    warnings (streamrec logs every camera fault itself); return what was changed, for the log."""
    changed = []
    level_text = environ.get(FFMPEG_LEVEL_ENV)
    if level_text is not None:
        try:
            level = int(level_text)
        except ValueError:
            level = FFMPEG_MAX_SAFE_LEVEL + 1
        if level > FFMPEG_MAX_SAFE_LEVEL:
            environ[FFMPEG_LEVEL_ENV] = str(FFMPEG_MAX_SAFE_LEVEL)
            changed.append(f"{FFMPEG_LEVEL_ENV}={level_text} lowered to {FFMPEG_MAX_SAFE_LEVEL} (higher levels print RTSP credentials)")
    url_printing = [name for name in URL_PRINTING_ENV if environ.pop(name, None) is not None]
    if url_printing:
        changed.append(f"{', '.join(url_printing)} set: OpenCV's warnings are off (they would print camera URLs "
                       "with their credentials)")
    if url_printing or OPENCV_LEVEL_ENV not in environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    for line in changed:
        log.warning("%s", line)
    return changed
