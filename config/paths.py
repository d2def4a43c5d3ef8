"""Where streamrec keeps files it makes itself (trained demo models, converted and compiled models)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping


def cache_root(environ: Mapping[str, str] = os.environ) -> Path:
    """$STREAMREC_CACHE_DIR, else $XDG_CACHE_HOME/streamrec, else ~/.cache/streamrec."""
    if environ.get("STREAMREC_CACHE_DIR"):
        return Path(environ["STREAMREC_CACHE_DIR"])
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "streamrec"
