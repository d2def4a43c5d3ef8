"""Logging set-up at the CLI edge: one line per event, credentials redacted, journal-friendly under systemd."""

from __future__ import annotations

import logging
import os
import sys
from typing import Mapping, TextIO

from config.redact import RedactingFormatter

PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO", stream: TextIO = sys.stderr, environ: Mapping[str, str] = os.environ) -> None:
    """Send all logs to `stream` through a redacting formatter (no timestamps when the journal adds them)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(JOURNAL_FORMAT if environ.get("JOURNAL_STREAM") else PLAIN_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
