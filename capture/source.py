"""What every camera source provides, and the error it raises on a fault."""

from __future__ import annotations

from typing import Optional, Protocol

import numpy as np


class SourceError(Exception):
    """A camera could not be opened or stopped delivering; the message is safe to log."""


class FrameSource(Protocol):
    """A camera, file or synthetic scene that yields BGR images."""

    name: str
    """How the source appears in logs (credentials masked)."""
    is_live: bool
    """Live sources run at their own pace; others are paced by the capture thread."""

    def open(self) -> None:
        """Open the device or stream; raise SourceError when that fails."""

    def read(self) -> Optional[np.ndarray]:
        """Return the next image, None at the end of a file; raise SourceError on a fault."""

    def fps(self) -> Optional[float]:
        """The source's nominal frame rate, if known."""

    def close(self) -> None:
        """Release the device; safe to call twice."""
