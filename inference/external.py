"""Classifiers trained elsewhere: ONNX (through ONNX Runtime) and TorchScript files with a labels file.

Logits are the first output. streamrec's own exports (inference/export.py) also give the penultimate features: the
ONNX output named `features`, the second element of a TorchScript model's (logits, features) tuple; models without
them give features None."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from config.schema import ModelConfig
from inference.errors import ModelError
from inference.features import predict_with_features
from inference.model import TorchClassifier
from inference.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec

log = logging.getLogger(__name__)

METADATA_KEY = "streamrec"
"""Exports carry {"labels", "crop", "resize", "mean", "std", "model_id"} under this key."""
FEATURES_OUTPUT = "features"
"""The name of an ONNX model's features output (inference/export.py writes it second, after the logits)."""


def read_labels(path: Path) -> tuple[str, ...]:
    """One label per line (blank lines ignored); raise ModelError when missing or empty."""
    try:
        labels = tuple(line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read labels file {path}: {exc}") from None
    if not labels:
        raise ModelError(f"labels file {path} is empty; it needs one label per line")
    return labels


def file_model_id(kind: str, path: Path) -> str:
    """`kind-stem-<8 hex of the file>`."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]
    return f"{kind}-{Path(path).stem}-{digest}"


def _settings(model: ModelConfig, metadata: dict[str, Any], path: Path, kind: str) -> tuple[tuple[str, ...], InputSpec, str]:
    """Labels, input spec and id: the config's values first, then what the export recorded, then ImageNet defaults."""
    if model.labels is not None:
        labels = read_labels(model.labels)
    elif metadata.get("labels"):
        labels = tuple(metadata["labels"])
    else:
        raise ModelError(f"{kind}:{path} needs a labels file: pass --labels FILE (model.labels), one label per line")
    crop = model.input_size or int(metadata.get("crop", 224))
    mean = tuple(model.mean or metadata.get("mean", IMAGENET_MEAN))
    std = tuple(model.std or metadata.get("std", IMAGENET_STD))
    spec = InputSpec.for_crop(crop, mean, std)
    if not model.input_size and metadata.get("resize"):
        spec = InputSpec(crop, int(metadata["resize"]), mean, std)
    return labels, spec, str(metadata.get("model_id") or file_model_id(kind, path))


def _check_outputs(classifier, labels: Sequence[str], path: Path) -> None:
    probe = torch.zeros((1, 3, classifier.input_spec.crop, classifier.input_spec.crop))
    try:
        outputs, features = predict_with_features(classifier, probe)
    except Exception as exc:
        raise ModelError(f"{path}: the model does not accept a 1x3x{classifier.input_spec.crop}x{classifier.input_spec.crop} "
                         f"float input ({exc.__class__.__name__}: {str(exc)[:200]}); set model.input_size") from None
    if outputs.ndim != 2 or outputs.shape[1] != len(labels):
        raise ModelError(f"{path}: the model gives {tuple(outputs.shape)} outputs but there are {len(labels)} labels")
    if features is not None and (not isinstance(features, torch.Tensor) or features.ndim != 2 or len(features) != 1):
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ModelError(f"{path}: the model's second output is {shape} for one image; "
                         f"streamrec reads it as (batch, width) features: make the model return its logits only, "
                         f"or (logits, features)")


class OnnxClassifier:
    """An ONNX model run by ONNX Runtime on the CPU: NCHW float input, logits out (and features, when the model has
    an output named `features`)."""

    backend = "onnxruntime"
    precision = "fp32"

    def __init__(self, path: Path, labels: Sequence[str], model_id: str, input_spec: InputSpec, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        names = [output.name for output in self._session.get_outputs()]
        self._logits = names[0]
        self._features: Optional[str] = FEATURES_OUTPUT if FEATURES_OUTPUT in names[1:] else None
        self.labels = tuple(labels)
        self.model_id = model_id
        self.input_spec = input_spec

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for the batch."""
        return torch.from_numpy(self._session.run([self._logits], self._feed(batch))[0])

    def predict_with_features(self, batch: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(logits, features) from one run; features None when the model has no `features` output."""
        if self._features is None:
            return self.predict(batch), None
        logits, features = self._session.run([self._logits, self._features], self._feed(batch))
        return torch.from_numpy(logits), torch.from_numpy(features)

    def _feed(self, batch: torch.Tensor) -> dict[str, np.ndarray]:
        return {self._input: np.ascontiguousarray(batch.detach().numpy(), dtype=np.float32)}


def onnx_metadata(path: Path) -> dict[str, Any]:
    """The streamrec metadata an export stored in the ONNX file, if any."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return {}


def load_onnx(path: Path, model: ModelConfig, threads: int) -> OnnxClassifier:
    """An ONNX classifier; ModelError when the file, runtime or labels are missing or do not fit."""
    if not Path(path).is_file():
        raise ModelError(f"ONNX model {path} not found")
    try:
        metadata = onnx_metadata(path)
        labels, spec, model_id = _settings(model, metadata, path, "onnx")
        classifier = OnnxClassifier(path, labels, model_id, spec, threads)
    except ImportError:
        raise ModelError("onnx: models need ONNX Runtime: pip install 'streamrec[onnx]'") from None
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{path}: not a usable ONNX model ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    _check_outputs(classifier, labels, path)
    return classifier


def load_torchscript(path: Path, model: ModelConfig) -> TorchClassifier:
    """A TorchScript classifier; ModelError when the file or labels are missing or do not fit."""
    if not Path(path).is_file():
        raise ModelError(f"TorchScript model {path} not found")
    extra = {f"{METADATA_KEY}.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ModelError(f"{path}: not a usable TorchScript model ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    metadata = json.loads(extra[f"{METADATA_KEY}.json"] or "{}")
    labels, spec, model_id = _settings(model, metadata, path, "torchscript")
    classifier = TorchClassifier(module, labels, model_id, spec)
    _check_outputs(classifier, labels, path)
    return classifier


def metadata_for(labels: Sequence[str], spec: InputSpec, model_id: str) -> dict[str, Any]:
    """What an export records about its model."""
    return {"labels": list(labels), "crop": spec.crop, "resize": spec.resize, "mean": list(spec.mean),
            "std": list(spec.std), "model_id": model_id}

