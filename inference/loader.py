"""Turn a model spec from the config (`resnet18`, a bundle, `onnx:FILE`, `torchscript:FILE`) into a Classifier."""

from __future__ import annotations

from config.schema import ModelConfig
from inference.errors import ModelError
from inference.imagenet import load_imagenet_resnet18
from inference.model import Classifier


def load_classifier(model: ModelConfig) -> Classifier:
    """Load the configured model; raise ModelError (exit 78) saying how to fix a missing or bad one."""
    spec = model.spec.strip()
    if spec == "resnet18":
        return load_imagenet_resnet18(model.weights, model.allow_download)
    raise ModelError(f"model.spec = {spec!r} is not supported by this build; use resnet18")
