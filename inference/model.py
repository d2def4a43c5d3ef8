"""The classifier interface the worker uses, and its torch implementation."""

from __future__ import annotations

import threading
from typing import Callable, Optional, Protocol, Sequence

import torch

from inference.features import feature_dim, split, with_features
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
    """An eval-mode torch module run under inference_mode.

    `deferred` builds the module on first use: a start that runs a ready-made compiled model from the cache needs
    only the weights (to find it), not the module, nor torchvision to build it."""

    backend = "torch"
    precision = "fp32"

    def __init__(self, module: Optional[torch.nn.Module], labels: Sequence[str], model_id: str,
                 input_spec: InputSpec) -> None:
        self._module = module.eval() if module is not None else None
        self._build: Optional[Callable[[], torch.nn.Module]] = None
        self._weights: Optional[dict[str, torch.Tensor]] = None
        self._lock = threading.Lock()
        self._with_features: Optional[torch.nn.Module] = None
        self.labels = tuple(labels)
        self.model_id = model_id
        self.input_spec = input_spec

    @classmethod
    def deferred(cls, build: Callable[[], torch.nn.Module], weights: dict[str, torch.Tensor], labels: Sequence[str],
                 model_id: str, input_spec: InputSpec) -> "TorchClassifier":
        """A classifier whose module `build()` makes on first use; `weights` is its state dict."""
        classifier = cls(None, labels, model_id, input_spec)
        classifier._build, classifier._weights = build, weights
        return classifier

    @property
    def module(self) -> torch.nn.Module:
        with self._lock:
            if self._module is None:
                self._module = self._build().eval()
            return self._module

    def weights(self) -> dict[str, torch.Tensor]:
        """The state dict (without building a deferred module)."""
        with self._lock:
            return self._module.state_dict() if self._module is not None else dict(self._weights)

    def __getstate__(self) -> dict:  # sent to the background build's process: the module (its builder cannot be
        state = {**self.__dict__, "_module": self.module, "_build": None, "_weights": None,  # pickled), no lock
                 "_with_features": None}
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for the batch."""
        with torch.inference_mode():
            output = self.module(batch)
        return output[0] if isinstance(output, tuple) else output

    def predict_with_features(self, batch: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(logits, penultimate features) from one forward pass; features None when the model cannot give them."""
        module = self.features_module()
        with torch.inference_mode():
            output = (module or self.module)(batch)
        if isinstance(output, tuple):  # a TorchScript export that returns (logits, features)
            return output[0], (output[1] if len(output) > 1 else None)
        return split(output, len(self.labels)) if module is not None else (output, None)

    def features_module(self) -> Optional[torch.nn.Module]:
        """The module returning `[logits | features]` (see inference/features.py), or None."""
        if self._with_features is None:
            self._with_features = with_features(self.module)
        return self._with_features

    @property
    def feature_dim(self) -> Optional[int]:
        """The width of the features (512 for ResNet-18), None when the model cannot give them."""
        weights = self._weights if self._module is None else None
        if weights is not None and "fc.weight" in weights:
            return int(weights["fc.weight"].shape[1])
        return feature_dim(self.module)
