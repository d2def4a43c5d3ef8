"""Logging set-up at the CLI edge: one line per event, credentials redacted, journal-friendly under systemd."""

from __future__ import annotations

import logging
import os
import sys
from typing import Mapping, TextIO

from config.redact import RedactingFormatter

PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"
QUIET_LIBRARY_LOGGERS = ("torch.utils._pytree", "torch.utils.cpp_extension")
"""Warnings that say nothing to a kiosk's operator: a deprecation inside torchao, and a CUDA build of torch
finding no CUDA when inductor compiles the int8 model. Their errors still show."""


def setup_logging(level: str = "INFO", stream: TextIO = sys.stderr, environ: Mapping[str, str] = os.environ) -> None:
    """Send all logs to `stream` through a redacting formatter (no timestamps when the journal adds them)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(JOURNAL_FORMAT if environ.get("JOURNAL_STREAM") else PLAIN_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
