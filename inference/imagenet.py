"""torchvision's ResNet-18 with the IMAGENET1K_V1 weights and the labels from their metadata.

torchvision is imported only when the module is built: importing it pulls in torch._dynamo (for its detection
ops), about a second of every start, which a start that runs a ready-made int8 or OpenVINO model never needs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch

from inference.errors import ModelError
from inference.model import TorchClassifier
from inference.preprocess import InputSpec
from inference.weights import resolve_resnet18_weights

log = logging.getLogger(__name__)

MODEL_ID = "resnet18-imagenet1k-v1"


LABELS_FILE = Path(__file__).with_name("imagenet_labels.txt")
"""The 1,000 class names of torchvision's ResNet18_Weights.IMAGENET1K_V1.meta["categories"], in order (a test
checks they are the same)."""


def imagenet_labels() -> tuple[str, ...]:
    """The 1,000 ImageNet class names, as the weights' metadata lists them."""
    return tuple(LABELS_FILE.read_text(encoding="utf-8").splitlines())


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


def resnet18_shapes(num_classes: int) -> dict[str, tuple[int, ...]]:
    """The state dict of torchvision's resnet18(num_classes=...): every key and its shape (a test compares them)."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def batch_norm(prefix: str, channels: int) -> None:
        shapes.update({f"{prefix}.{name}": (channels,) for name in ("weight", "bias", "running_mean", "running_var")})
        shapes[f"{prefix}.num_batches_tracked"] = ()

    batch_norm("bn1", 64)
    inputs = 64
    for layer, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            prefix, into = f"layer{layer}.{block}", inputs if block == 0 else planes
            shapes[f"{prefix}.conv1.weight"] = (planes, into, 3, 3)
            batch_norm(f"{prefix}.bn1", planes)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            batch_norm(f"{prefix}.bn2", planes)
            if into != planes:
                shapes[f"{prefix}.downsample.0.weight"] = (planes, into, 1, 1)
                batch_norm(f"{prefix}.downsample.1", planes)
        inputs = planes
    shapes.update({"fc.weight": (num_classes, 512), "fc.bias": (num_classes,)})
    return shapes


def check_resnet18(state: dict[str, torch.Tensor], num_classes: int, source: Path) -> None:
    """ModelError unless `state` has exactly the keys and shapes of ResNet-18 with `num_classes` outputs (checked
    without building the module)."""
    expected = resnet18_shapes(num_classes)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    problems = [f"{what}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
                for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
    if problems:
        raise ModelError(f"{source}: weights do not fit ResNet-18 with {num_classes} classes ({'; '.join(problems)})")


def build_resnet18(state: dict[str, torch.Tensor], num_classes: int, source: Path) -> torch.nn.Module:
    """A ResNet-18 with `num_classes` outputs and the given weights; keys and shapes must match exactly."""
    from torchvision.models import resnet18

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
    state = load_state_dict(path)
    check_resnet18(state, len(labels), path)
    log.info("loaded ResNet-18 ImageNet weights from %s", path)
    return TorchClassifier.deferred(lambda: build_resnet18(state, len(labels), path), state, labels, MODEL_ID,
                                    InputSpec())
