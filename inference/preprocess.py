"""Frames to one normalized NCHW batch with OpenCV/numpy, matching torchvision's Resize/CenterCrop/Normalize."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """What a model expects: resize the shorter side to `resize`, centre-crop `crop`, normalize (RGB order)."""

    crop: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def for_crop(cls, crop: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> "InputSpec":
        """The torchvision convention: resize to crop * 256/224 before cropping."""
        return cls(crop=crop, resize=int(round(crop * 256 / 224)), mean=tuple(mean), std=tuple(std))


def resized_shape(height: int, width: int, resize: int) -> tuple[int, int]:
    """The (height, width) after torchvision's Resize(resize): the shorter side becomes `resize`."""
    if height <= width:
        return resize, max(resize, int(resize * width / height))
    return max(resize, int(resize * height / width)), resize


def center_crop(image: np.ndarray, crop: int) -> np.ndarray:
    """The centre `crop` square of an HWC image, as torchvision's CenterCrop rounds it (a view)."""
    height, width = image.shape[:2]
    top, left = int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))
    return image[top:top + crop, left:left + crop]


def resize_and_crop(bgr: np.ndarray, resize: int, crop: int) -> np.ndarray:
    """Resize the shorter side to `resize` and cut the centre `crop` square (an HWC view, of a new array unless
    `bgr` already had the resized size)."""
    return center_crop(Resizer(resize)(bgr), crop)


class Resizer:
    """torchvision's Resize on uint8 HWC images, written into a buffer reused while the output size stays the same.

    torch's antialiased bilinear resize on uint8 is torchvision's own (within 1 grey level of PIL's) and 4x faster
    than OpenCV's area filter at the non-integer scales cameras need. Writing into a channels-last buffer keeps the
    kernel's own layout: 0.28 against 0.38 ms for 640x480, which returns planes that then need transposing."""

    def __init__(self, resize: int, reuse: bool = False) -> None:
        self.resize = resize
        self._reuse = reuse
        self._buffer: Optional[np.ndarray] = None

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        """The resized image: `bgr` itself when it already has the size, else the buffer (valid until the next call)."""
        height, width = bgr.shape[:2]
        size = resized_shape(height, width, self.resize)
        if size == (height, width):
            return bgr
        out = self._output(size, bgr.shape[2])
        planes = torch.from_numpy(np.ascontiguousarray(bgr)).permute(2, 0, 1).unsqueeze(0)
        torch.ops.aten._upsample_bilinear2d_aa.out(planes, list(size), False, None, None,
                                                   out=torch.from_numpy(out).permute(2, 0, 1).unsqueeze(0))
        return out

    def _output(self, size: tuple[int, int], channels: int) -> np.ndarray:
        shape = (*size, channels)
        if not self._reuse or self._buffer is None or self._buffer.shape != shape:
            self._buffer = np.empty(shape, dtype=np.uint8)
        return self._buffer


class BatchPreprocessor:
    """Writes frames into one preallocated batch buffer shared with torch (no per-frame allocation): normalized
    float32 NCHW RGB, or in `rgb_uint8` mode the uint8 NHWC RGB crops."""

    def __init__(self, spec: InputSpec, max_batch: int, rgb_uint8: bool = False) -> None:
        """`rgb_uint8`: fill the batch with the crops themselves in RGB order, uint8 NHWC, for a model that
        converts and normalizes inside its own graph (see `takes_rgb_uint8`)."""
        self.spec = spec
        self.max_batch = max_batch
        self.rgb_uint8 = rgb_uint8
        shape = (max_batch, spec.crop, spec.crop, 3) if rgb_uint8 else (max_batch, 3, spec.crop, spec.crop)
        self._buffer = np.empty(shape, dtype=np.uint8 if rgb_uint8 else np.float32)
        self._tensor = torch.from_numpy(self._buffer)
        self._resizer = Resizer(spec.resize, reuse=True)
        self._scale = [np.float32(1.0 / (255.0 * s)) for s in spec.std]
        self._offset = [np.float32(m / s) for m, s in zip(spec.mean, spec.std)]

    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Preprocess up to max_batch BGR images; returns a view of the shared buffer (valid until the next call)."""
        if len(images) > self.max_batch:
            raise ValueError(f"{len(images)} images exceed the batch size {self.max_batch}")
        for slot, image in enumerate(images):
            self.fill_slot(slot, image)
        return self._tensor[: len(images)]

    def fill_slot(self, slot: int, bgr: np.ndarray) -> None:
        """Normalize one BGR image into batch position `slot`, as RGB planes (or its RGB crop, in uint8 mode)."""
        cropped = center_crop(self._resizer(bgr), self.spec.crop)
        if self.rgb_uint8:
            cv2.cvtColor(cropped, cv2.COLOR_BGR2RGB, dst=self._buffer[slot])
            return
        target = self._buffer[slot]
        for rgb_channel in range(3):
            plane = target[rgb_channel]
            np.multiply(cropped[:, :, 2 - rgb_channel], self._scale[rgb_channel], out=plane, casting="unsafe")
            plane -= self._offset[rgb_channel]


def normalize_crops(crops_bgr: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """A float NCHW RGB tensor from uint8 NHWC BGR crops, normalized exactly as BatchPreprocessor does."""
    rgb = torch.from_numpy(np.ascontiguousarray(crops_bgr[..., ::-1])).permute(0, 3, 1, 2).float()
    scale = torch.tensor([1.0 / (255.0 * s) for s in spec.std]).view(1, 3, 1, 1)
    offset = torch.tensor([m / s for m, s in zip(spec.mean, spec.std)]).view(1, 3, 1, 1)
    return rgb * scale - offset


def rgb_uint8_crops(batch: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """The uint8 NHWC RGB crops a normalized float NCHW batch was made from (the inverse of the normalization,
    rounded; exact for batches BatchPreprocessor made)."""
    scale = torch.tensor([255.0 * s for s in spec.std]).view(1, 3, 1, 1)
    mean = torch.tensor([255.0 * m for m in spec.mean]).view(1, 3, 1, 1)
    rgb = (batch.float() * scale + mean).round_().clamp_(0, 255)
    return rgb.to(torch.uint8).permute(0, 2, 3, 1).contiguous()
