"""Classifiers trained elsewhere: ONNX (through ONNX Runtime) and TorchScript files with a labels file."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from config.schema import ModelConfig
from inference.errors import ModelError
from inference.model import TorchClassifier
from inference.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec

log = logging.getLogger(__name__)

METADATA_KEY = "streamrec"
"""Exports carry {"labels", "crop", "resize", "mean", "std", "model_id"} under this key."""


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
        outputs = classifier.predict(probe)
    except Exception as exc:
        raise ModelError(f"{path}: the model does not accept a 1x3x{classifier.input_spec.crop}x{classifier.input_spec.crop} "
                         f"float input ({exc.__class__.__name__}: {str(exc)[:200]}); set model.input_size") from None
    if outputs.ndim != 2 or outputs.shape[1] != len(labels):
        raise ModelError(f"{path}: the model gives {tuple(outputs.shape)} outputs but there are {len(labels)} labels")


class OnnxClassifier:
    """An ONNX model run by ONNX Runtime on the CPU: NCHW float input, logits out."""

    backend = "onnxruntime"
    precision = "fp32"

    def __init__(self, path: Path, labels: Sequence[str], model_id: str, input_spec: InputSpec, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.labels = tuple(labels)
        self.model_id = model_id
        self.input_spec = input_spec

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for the batch."""
        array = np.ascontiguousarray(batch.detach().numpy(), dtype=np.float32)
        return torch.from_numpy(self._session.run(None, {self._input: array})[0])


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

