"""torchvision's ResNet-18 with the IMAGENET1K_V1 weights and the labels from their metadata."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
from torchvision.models import ResNet18_Weights, resnet18

from inference.errors import ModelError
from inference.model import TorchClassifier
from inference.preprocess import InputSpec
from inference.weights import resolve_resnet18_weights

log = logging.getLogger(__name__)

MODEL_ID = "resnet18-imagenet1k-v1"


def imagenet_labels() -> tuple[str, ...]:
    """The 1,000 ImageNet class names, as the weights' metadata lists them."""
    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint safely (tensors only); raise ModelError when it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable weights file ({exc.__class__.__name__}: {exc}); "
                         "it may be truncated: fetch it again") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: not a state dict of tensors")
    return state


def build_resnet18(state: dict[str, torch.Tensor], num_classes: int, source: Path) -> torch.nn.Module:
    """A ResNet-18 with `num_classes` outputs and the given weights; keys and shapes must match exactly."""
    module = resnet18(weights=None, num_classes=num_classes)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ModelError(f"{source}: weights do not fit ResNet-18 with {num_classes} classes ({first_line})") from None
    return module


def load_imagenet_resnet18(weights: Optional[Path], allow_download: bool) -> TorchClassifier:
    """The default model; raises WeightsNotFound (exit 78) with instructions when the file is missing."""
    path = resolve_resnet18_weights(weights, allow_download)
    labels = imagenet_labels()
    module = build_resnet18(load_state_dict(path), len(labels), path)
    log.info("loaded ResNet-18 ImageNet weights from %s", path)
    return TorchClassifier(module, labels, MODEL_ID, InputSpec())
