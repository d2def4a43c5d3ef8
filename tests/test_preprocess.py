"""Preprocessing equals torchvision's PIL reference (Resize 256, CenterCrop 224, Normalize) within a stated tolerance."""

import cv2
import numpy as np
import pytest
from PIL import Image
from torchvision.models import ResNet18_Weights

from inference.preprocess import BatchPreprocessor, InputSpec, normalize_crops, resize_and_crop

# Tolerance in normalized units (1 grey level ≈ 0.0175): torch's antialiased bilinear resize and PIL's
# round a few pixels differently (by one grey level, never more); all others are equal. A BGR/RGB
# mix-up gives a mean difference above 0.4, far outside these bounds.
MEAN_ABS_TOLERANCE = 0.001
MAX_ABS_TOLERANCE = 0.018


def realistic_image(height: int, width: int, seed: int) -> np.ndarray:
    """Shapes, text, coloured background and sensor noise: edges and texture like a camera picture."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = rng.integers(0, 255, 3)
    for _ in range(30):
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, center, int(rng.integers(5, max(6, height // 4))), color, -1)
        cv2.putText(image, "SALE", center, cv2.FONT_HERSHEY_SIMPLEX, 1.2, color[::-1], 2)
    noisy = image + rng.normal(0, 6, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def torchvision_reference(bgr: np.ndarray) -> np.ndarray:
    rgb = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return ResNet18_Weights.IMAGENET1K_V1.transforms()(rgb).numpy()


@pytest.mark.parametrize("height, width", [(480, 640), (720, 1280), (1080, 1920), (600, 400), (256, 256), (150, 500), (120, 160)])
def test_preprocessing_matches_torchvision_reference(height, width):
    bgr = realistic_image(height, width, seed=height + width)
    ours = BatchPreprocessor(InputSpec(), max_batch=1)([bgr])[0].numpy()
    difference = np.abs(ours - torchvision_reference(bgr))
    assert ours.shape == (3, 224, 224)
    assert difference.mean() < MEAN_ABS_TOLERANCE
    assert difference.max() < MAX_ABS_TOLERANCE


def test_channel_order_mixup_would_fail_the_tolerance():
    bgr = realistic_image(480, 640, seed=7)
    swapped = BatchPreprocessor(InputSpec(), max_batch=1)([bgr[:, :, ::-1].copy()])[0].numpy()
    assert np.abs(swapped - torchvision_reference(bgr)).mean() > 100 * MEAN_ABS_TOLERANCE


def test_batch_is_written_into_one_preallocated_buffer():
    preprocess = BatchPreprocessor(InputSpec(), max_batch=4)
    first = preprocess([realistic_image(480, 640, 1), realistic_image(720, 1280, 2)])
    second = preprocess([realistic_image(300, 300, 3)])
    assert first.shape == (2, 3, 224, 224) and second.shape == (1, 3, 224, 224)
    assert first.data_ptr() == second.data_ptr()


def test_too_many_images_for_the_batch_are_refused():
    preprocess = BatchPreprocessor(InputSpec(), max_batch=1)
    with pytest.raises(ValueError, match="exceed"):
        preprocess([realistic_image(64, 64, 1)] * 2)


def test_custom_input_size_follows_torchvision_ratio():
    spec = InputSpec.for_crop(112)
    assert (spec.crop, spec.resize) == (112, 128)
    out = BatchPreprocessor(spec, max_batch=1)([realistic_image(480, 640, 4)])
    assert out.shape == (1, 3, 112, 112)


def test_cameras_of_different_sizes_in_one_batch_each_get_their_own_resize():
    sizes = [(480, 640), (720, 1280), (480, 640), (600, 400)]
    images = [realistic_image(h, w, seed=n) for n, (h, w) in enumerate(sizes)]
    together = BatchPreprocessor(InputSpec(), max_batch=4)(images).numpy()
    for slot, image in enumerate(images):
        alone = BatchPreprocessor(InputSpec(), max_batch=1)([image])[0].numpy()
        np.testing.assert_array_equal(together[slot], alone)


def test_resize_and_crop_returns_a_picture_of_its_own():
    first = resize_and_crop(realistic_image(480, 640, 1), 256, 224)
    kept = first.copy()
    resize_and_crop(realistic_image(480, 640, 2), 256, 224)
    np.testing.assert_array_equal(first, kept)


def test_uint8_mode_hands_over_the_rgb_crops_that_float_mode_normalizes():
    images = [realistic_image(480, 640, 5), realistic_image(720, 1280, 6)]
    crops = BatchPreprocessor(InputSpec(), max_batch=2, rgb_uint8=True)(images).numpy()
    assert crops.dtype == np.uint8 and crops.shape == (2, 224, 224, 3)
    for crop, image in zip(crops, images):
        np.testing.assert_array_equal(crop, resize_and_crop(image, 256, 224)[:, :, ::-1])
    floats = BatchPreprocessor(InputSpec(), max_batch=2)(images)
    np.testing.assert_allclose(normalize_crops(crops[..., ::-1], InputSpec()).numpy(), floats.numpy(), atol=1e-5)
