"""The on-screen overlay: one OpenCV window per camera, driven from the main thread."""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Mapping, Optional, Sequence

import cv2

from capture.status import CameraStatus
from stream.overlay.latest import LatestResults

log = logging.getLogger(__name__)

QUIT_KEYS = (ord("q"), ord("Q"), 27)
SYSTEM_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype")


def display_available(environ: Mapping[str, str] = os.environ) -> bool:
    """True when an X11 or Wayland display is configured."""
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


class DisplaySink(LatestResults):
    """Keeps each camera's latest result and shows it; `q`, Esc or closing a window asks to stop."""

    def __init__(
        self,
        statuses: Sequence[CameraStatus],
        current_item: Callable[[str], Optional[str]],
        title: str,
        max_fps: float,
        stale_after_s: float,
        fullscreen: bool = False,
    ) -> None:
        super().__init__(statuses, current_item, stale_after_s)
        self._title = title
        self._interval = 1.0 / max_fps
        self._opened: set[str] = set()
        self._fullscreen = fullscreen

    def window_name(self, camera: str) -> str:
        """The title of a camera's window."""
        return f"{self._title} - {camera}"

    def run(self, keep_running: Callable[[], bool]) -> bool:
        """Refresh the windows until `keep_running()` is false; return True when the user asked to quit."""
        try:
            while keep_running():
                started = time.monotonic()
                self.refresh()
                key = cv2.waitKey(max(1, int(self._interval * 1000))) & 0xFF
                if key in QUIT_KEYS or self._a_window_was_closed():
                    log.info("overlay window closed; stopping")
                    return True
                time.sleep(max(0.0, self._interval - (time.monotonic() - started)))
            return False
        finally:
            self.close()

    def refresh(self) -> None:
        """Draw and show every camera's picture once."""
        for status in self._statuses:
            picture = self.render(status)
            if status.camera not in self._opened:
                self._open_window(status.camera, picture.shape[1], picture.shape[0])
            cv2.imshow(self.window_name(status.camera), picture)

    def _open_window(self, camera: str, width: int, height: int) -> None:
        _use_system_fonts()
        name = self.window_name(camera)
        cv2.namedWindow(name, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        if self._fullscreen:
            cv2.setWindowProperty(name, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        else:
            cv2.resizeWindow(name, width, height)
        self._opened.add(camera)

    def _a_window_was_closed(self) -> bool:
        for camera in self._opened:
            try:
                if cv2.getWindowProperty(self.window_name(camera), cv2.WND_PROP_VISIBLE) < 1:
                    return True
            except cv2.error:
                return True
        return False

    def close(self) -> None:
        """Close every window."""
        if self._opened:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
            self._opened.clear()


def _use_system_fonts() -> None:
    """OpenCV's bundled Qt ships no fonts; point it at the system's so it does not complain on every paint."""
    if "QT_QPA_FONTDIR" not in os.environ:
        for directory in SYSTEM_FONT_DIRS:
            if os.path.isdir(directory):
                os.environ["QT_QPA_FONTDIR"] = directory
                return
