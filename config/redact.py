"""Remove credentials from URLs and free text before they reach logs or messages."""

from __future__ import annotations

import logging
import re

# Up to the LAST "@" on the line that starts a host: a password with a raw "@", "/" or blank (invalid, but
# people write them) is masked whole. Over-masking a log line is harmless; a leaked password is not.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\n]*)@(?=[^\s@])")
_SECRET_PARAM = re.compile(
    r"(?P<key>(?:password|passwd|pwd|pass|token|secret|key|auth)=)(?P<value>[^&\s;]+)",
    re.IGNORECASE,
)
MASK = "***"


def redact(text: str) -> str:
    """Return `text` with URL user:password parts and secret query values masked."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}{MASK}", text)


class RedactingFormatter(logging.Formatter):
    """Log formatter whose output, tracebacks included, never carries credentials."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
