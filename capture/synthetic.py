"""A built-in moving scene: frames with changing content, no camera or file needed."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

DEFAULT_SIZE = (640, 480)
DEFAULT_FPS = 30.0
SHAPE_COUNT = 4


class SyntheticSource:
    """Coloured shapes drifting over a gradient; frame n is a pure function of (seed, n)."""

    is_live = False

    def __init__(self, width: int = 640, height: int = 480, fps: float = DEFAULT_FPS, seed: int = 0) -> None:
        self.name = f"synthetic:shapes(seed={seed})"
        self._size = (width, height)
        self._fps = fps
        self._seed = seed
        self._index = 0
        self._background: Optional[np.ndarray] = None
        rng = np.random.default_rng(seed)
        self._colors = rng.integers(40, 255, size=(SHAPE_COUNT, 3))
        self._phases = rng.uniform(0, 2 * np.pi, size=(SHAPE_COUNT, 2))
        self._speeds = rng.uniform(0.2, 1.0, size=(SHAPE_COUNT, 2))

    def open(self) -> None:
        """Prepare the background."""
        width, height = self._size
        ramp = np.linspace(30, 120, width, dtype=np.float32)
        gray = np.tile(ramp, (height, 1)).astype(np.uint8)
        self._background = cv2.merge([gray, np.full_like(gray, 60), gray[:, ::-1]])

    def fps(self) -> Optional[float]:
        """The configured frame rate."""
        return self._fps

    def read(self) -> Optional[np.ndarray]:
        """Render the next frame."""
        if self._background is None:
            self.open()
        frame = self.render(self._index)
        self._index += 1
        return frame

    def render(self, index: int) -> np.ndarray:
        """Frame number `index` of this scene."""
        assert self._background is not None
        width, height = self._size
        image = self._background.copy()
        t = index / self._fps
        for k in range(SHAPE_COUNT):
            x = int((0.5 + 0.4 * np.sin(self._speeds[k, 0] * t + self._phases[k, 0])) * width)
            y = int((0.5 + 0.4 * np.cos(self._speeds[k, 1] * t + self._phases[k, 1])) * height)
            color = tuple(int(c) for c in np.roll(self._colors[k], (index // 90) % 3))
            size = max(8, min(width, height) // (6 + k))
            if k % 2:
                cv2.rectangle(image, (x - size, y - size // 2), (x + size, y + size // 2), color, -1)
            else:
                cv2.circle(image, (x, y), size, color, -1, cv2.LINE_AA)
        cv2.putText(image, f"{index:06d}", (10, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
        return image

    def close(self) -> None:
        """Nothing to release."""
        self._background = None
