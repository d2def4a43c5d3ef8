"""Embeddings from the same forward pass as the logits: the penultimate features (512 for ResNet-18).

A model whose head is a final `fc` Linear on flattened features (torchvision's ResNets, every bundle) gets
a copy whose `fc` returns `[logits | features]` as one tensor. Every backend then compiles, quantizes or
converts one graph with one output, as before, and `split` cuts it apart: the logits are the same numbers
the plain model gives, and the features cost a concatenation.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch

FEATURES_REVISION = 1
"""Part of the key of cached compiled models (their output now holds the features too)."""


class LogitsAndFeatures(torch.nn.Module):
    """Stands in for a model's final Linear: its input (the features) goes out beside its output (the logits)."""

    def __init__(self, fc: torch.nn.Linear) -> None:
        super().__init__()
        self.fc = fc

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.fc(features), features], dim=1)


def feature_dim(module: torch.nn.Module) -> Optional[int]:
    """The width of `module`'s penultimate features, when its head is a final Linear named `fc` (else None)."""
    head = getattr(module, "fc", None)
    if isinstance(head, LogitsAndFeatures):
        head = head.fc
    return head.in_features if isinstance(head, torch.nn.Linear) else None


def with_features(module: torch.nn.Module) -> Optional[torch.nn.Module]:
    """A copy of `module` whose output is `[logits | features]`; None when its head is not a final `fc` Linear."""
    if isinstance(getattr(module, "fc", None), LogitsAndFeatures):
        return module
    if feature_dim(module) is None or isinstance(module, torch.jit.ScriptModule):
        return None
    combined = copy.deepcopy(module)
    combined.fc = LogitsAndFeatures(combined.fc)
    return combined.eval()


def split(output: torch.Tensor, num_labels: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(logits, features) from a `[logits | features]` output; (output, None) when it holds logits only."""
    if output.shape[1] == num_labels:
        return output, None
    return output[:, :num_labels], output[:, num_labels:]


def predict_with_features(classifier, batch: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(logits, features) from any classifier: features are None for one that cannot give them (an external
    ONNX/TorchScript model without them, a served model)."""
    method = getattr(classifier, "predict_with_features", None)
    if method is None:
        return classifier.predict(batch), None
    return method(batch)
