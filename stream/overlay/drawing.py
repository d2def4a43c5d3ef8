"""Draw results over a frame: a pure function from (image, what to show) to a new annotated image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from inference.topk import Prediction

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOR = (255, 255, 255)
PANEL_COLOR = (32, 32, 32)
BANNER_COLOR = (0, 0, 200)
BAR_COLOR = (80, 200, 80)


@dataclass(frozen=True)
class OverlayInfo:
    """Everything drawn on one camera's picture."""

    camera: str
    topk: Sequence[Prediction] = ()
    fps: float = 0.0
    latency_ms: Optional[float] = None
    item: Optional[str] = None
    banner: Optional[str] = None
    """A warning across the picture (camera offline, frozen, results stale), or None."""


def _scale_for(image: np.ndarray) -> float:
    return max(0.45, min(image.shape[0], image.shape[1]) / 560.0)


def draw_overlay(image: np.ndarray, info: OverlayInfo) -> np.ndarray:
    """Return a copy of `image` with the top-k labels, scores, fps, latency, item and banner drawn on it."""
    canvas = image.copy()
    scale = _scale_for(canvas)
    line_h = int(32 * scale)
    lines = [f"{p.label[:28]}  {p.score * 100:5.1f}%" for p in info.topk]
    status = f"{info.camera}  {info.fps:4.1f} fps"
    if info.latency_ms is not None:
        status += f"  {info.latency_ms:4.0f} ms"
    rows = [status, *lines] + ([f"item: {info.item}"] if info.item else [])
    width = int(max(cv2.getTextSize(row, FONT, 0.7 * scale, 1)[0][0] for row in rows) + 20 * scale)
    _shade(canvas, (0, 0, min(width, canvas.shape[1]), min(line_h * len(rows) + int(10 * scale), canvas.shape[0])))
    for row_index, text in enumerate(rows):
        y = int((row_index + 1) * line_h)
        if 0 < row_index <= len(info.topk):
            bar = int(info.topk[row_index - 1].score * (width - 10 * scale))
            cv2.rectangle(canvas, (int(5 * scale), y - line_h + 8), (int(5 * scale) + bar, y + 4), BAR_COLOR, -1)
        cv2.putText(canvas, text, (int(10 * scale), y), FONT, 0.7 * scale, TEXT_COLOR, max(1, int(2 * scale)), cv2.LINE_AA)
    if info.banner:
        _draw_banner(canvas, info.banner, scale)
    return canvas


def _shade(canvas: np.ndarray, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    region = canvas[y0:y1, x0:x1]
    region[:] = (region * 0.35 + np.array(PANEL_COLOR) * 0.65).astype(np.uint8)


def _draw_banner(canvas: np.ndarray, text: str, scale: float) -> None:
    height, width = canvas.shape[:2]
    band = int(56 * scale)
    top = max(0, height // 2 - band // 2)
    canvas[top:top + band] = (canvas[top:top + band] * 0.3 + np.array(BANNER_COLOR) * 0.7).astype(np.uint8)
    (text_w, text_h), _ = cv2.getTextSize(text, FONT, 1.0 * scale, 2)
    origin = (max(5, (width - text_w) // 2), top + (band + text_h) // 2)
    cv2.putText(canvas, text, origin, FONT, 1.0 * scale, TEXT_COLOR, max(1, int(2 * scale)), cv2.LINE_AA)


def banner_for(state: str, age_s: Optional[float], stale_after_s: float) -> Optional[str]:
    """The warning to show for a camera's state and its latest result's age, or None when all is well."""
    if state in ("connecting", "reconnecting", "stopped"):
        return f"CAMERA OFFLINE ({state})"
    if state == "frozen":
        return "CAMERA FROZEN (same picture)"
    if state == "blocked":
        return "RECOGNIZER BEHIND"
    if age_s is None:
        return "WAITING FOR RESULTS"
    if age_s > stale_after_s:
        return f"RESULTS STALE ({age_s:.1f} s old)"
    return None
