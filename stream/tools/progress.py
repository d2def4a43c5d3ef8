"""A progress bar for long work on the terminal (a line per stage when the output is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_S = 0.2


class ProgressBar:
    """`label [#####.....]  50%  12/24  loss 0.41  acc 0.87  0:12` redrawn in place on a terminal."""

    def __init__(self, label: str, total: int, stream: TextIO = sys.stderr, width: int = 28) -> None:
        self._label = label
        self._total = max(1, total)
        self._stream = stream
        self._width = width
        self._tty = getattr(stream, "isatty", lambda: False)()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._line = ""

    def update(self, done: int, **figures: float) -> None:
        """Show `done` of total, with figures such as loss and accuracy."""
        self._line = self._render(done, figures)
        now = time.monotonic()
        if self._tty and (now - self._last_draw >= REDRAW_S or done >= self._total):
            self._stream.write("\r" + self._line)
            self._stream.flush()
            self._last_draw = now

    def update_total(self, done: int, total: int) -> None:
        """Show `done` of a total that was not known when the bar was made."""
        self._total = max(1, total)
        self.update(done)

    def close(self, summary: str = "") -> None:
        """Finish the bar with an optional summary on the same line."""
        line = f"{self._line}  {summary}".rstrip()
        self._stream.write(("\r" + line if self._tty else line) + "\n")
        self._stream.flush()

    def _render(self, done: int, figures: dict[str, float]) -> str:
        fraction = min(1.0, done / self._total)
        filled = int(fraction * self._width)
        bar = "#" * filled + "." * (self._width - filled)
        elapsed = int(time.monotonic() - self._started)
        extras = "  ".join(f"{name} {value:.3f}" if value < 10 else f"{name} {value:.0f}" for name, value in figures.items())
        return f"{self._label} [{bar}] {fraction * 100:3.0f}%  {done}/{self._total}  {extras}  {elapsed // 60}:{elapsed % 60:02d}"
