"""The overlay is a pure drawing function: labels change the pixels where the text goes."""

import numpy as np

from inference.topk import Prediction
from stream.overlay.drawing import OverlayInfo, banner_for, draw_overlay

PREDICTIONS = (Prediction("cola can", 1, 0.82), Prediction("chips", 2, 0.11), Prediction("milk", 3, 0.04))


def test_drawing_labels_changes_pixels_in_the_text_panel_only():
    image = np.full((480, 640, 3), 128, np.uint8)
    annotated = draw_overlay(image, OverlayInfo("cam0", PREDICTIONS, fps=29.7, latency_ms=41.0))
    changed = np.any(annotated != image, axis=2)
    rows, cols = np.nonzero(changed)
    assert changed[:140, :300].mean() > 0.3  # the panel with four text rows in the top-left
    assert rows.max() < 200 and not changed[300:, :].any()
    assert np.array_equal(image, np.full((480, 640, 3), 128, np.uint8)), "the input must not be modified"


def test_different_labels_draw_different_pixels():
    image = np.zeros((480, 640, 3), np.uint8)
    first = draw_overlay(image, OverlayInfo("cam0", PREDICTIONS))
    second = draw_overlay(image, OverlayInfo("cam0", (Prediction("bread", 4, 0.82),) + PREDICTIONS[1:]))
    assert np.any(first != second)


def test_banner_covers_the_middle_of_the_picture():
    image = np.full((480, 640, 3), 200, np.uint8)
    annotated = draw_overlay(image, OverlayInfo("cam0", banner="CAMERA OFFLINE (reconnecting)"))
    middle = annotated[230:250, 300:340].astype(int)
    assert middle[..., 2].mean() > middle[..., 0].mean() + 50  # red band


def test_small_and_large_frames_are_drawn_without_error():
    for shape in [(48, 64, 3), (2160, 3840, 3)]:
        assert draw_overlay(np.zeros(shape, np.uint8), OverlayInfo("c", PREDICTIONS)).shape == shape


def test_banner_for_states_and_stale_results():
    assert banner_for("streaming", 0.05, 0.5) is None
    assert "OFFLINE" in banner_for("reconnecting", 0.05, 0.5)
    assert "FROZEN" in banner_for("frozen", 0.05, 0.5)
    assert "STALE" in banner_for("streaming", 2.0, 0.5)
