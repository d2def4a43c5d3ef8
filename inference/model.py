"""The classifier interface the worker uses, and its torch implementation."""

from __future__ import annotations

from typing import Protocol, Sequence

import torch

from inference.preprocess import InputSpec


class Classifier(Protocol):
    """Maps a normalized NCHW float batch to logits (N, len(labels))."""

    model_id: str
    """Short id published with every result, e.g. resnet18-imagenet1k-v1."""
    labels: Sequence[str]
    input_spec: InputSpec

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for the batch."""


def takes_rgb_uint8(classifier: Classifier) -> bool:
    """Whether `classifier` also accepts uint8 NHWC RGB crops and normalizes them inside its graph (OpenVINO and
    torch int8 do), which saves the pipeline's preprocessing thread the normalization. Every classifier accepts
    normalized floats."""
    return bool(getattr(classifier, "takes_rgb_uint8", False))


def serving_path(classifier: Classifier) -> tuple[str, str]:
    """(backend, precision) of a classifier, e.g. ("openvino", "int8"); classifiers that do not say are
    ("custom", "fp32")."""
    return str(getattr(classifier, "backend", "custom")), str(getattr(classifier, "precision", "fp32"))


class TorchClassifier:
    """An eval-mode torch module run under inference_mode."""

    backend = "torch"
    precision = "fp32"

    def __init__(self, module: torch.nn.Module, labels: Sequence[str], model_id: str, input_spec: InputSpec) -> None:
        self.module = module.eval()
        self.labels = tuple(labels)
        self.model_id = model_id
        self.input_spec = input_spec

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for the batch."""
        with torch.inference_mode():
            return self.module(batch)
