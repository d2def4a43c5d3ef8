"""Write a loaded torch classifier as ONNX or TorchScript, with its labels beside it, or as a Triton model
repository (inference/triton_export.py). Every file is written under a temporary name, then renamed into place,
readable like any file the user writes (the umask decides, not mkstemp's 0600).

A model with a final `fc` Linear (resnet18, every bundle) is exported with two outputs, the logits first and the
penultimate features second: ONNX outputs `logits` and `features`, TorchScript a tuple (logits, features)."""

from __future__ import annotations

import inspect
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import torch

from inference.artifacts import staged
from inference.errors import ModelError
from inference.external import FEATURES_OUTPUT, METADATA_KEY, metadata_for
from inference.model import TorchClassifier

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 18
LOGITS = "logits"
"""The name of the ONNX logits output: always the first (loaders read the first output as the logits)."""


class LogitsThenFeatures(torch.nn.Module):
    """A `[logits | features]` module (inference/features.py) with the two as separate outputs."""

    def __init__(self, combined: torch.nn.Module, num_labels: int) -> None:
        super().__init__()
        self.combined = combined
        self.num_labels = num_labels

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.combined(batch)
        return output[:, :self.num_labels], output[:, self.num_labels:]


def exported_module(classifier: TorchClassifier) -> tuple[torch.nn.Module, tuple[str, ...]]:
    """The module to export and its output names: logits and features when the model has them, else logits."""
    combined = classifier.features_module()
    if combined is None:
        return classifier.module.eval(), (LOGITS,)
    return LogitsThenFeatures(combined, len(classifier.labels)).eval(), (LOGITS, FEATURES_OUTPUT)


def labels_path_for(out: Path) -> Path:
    """Where an export's labels file goes: `model.onnx` → `model.labels.txt`."""
    return out.with_suffix(".labels.txt")


def export_classifier(classifier: TorchClassifier, fmt: str, out: Path) -> tuple[Path, Path]:
    """Export to `out` (ONNX with a dynamic batch, or traced TorchScript) and write the labels file. The model
    gives its features as a second output when it has them (see the module docstring)."""
    if not isinstance(classifier, TorchClassifier):
        raise ModelError("only torch models (resnet18 or a bundle) can be exported")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    module, outputs = exported_module(classifier)
    example = torch.zeros((2, 3, classifier.input_spec.crop, classifier.input_spec.crop))
    metadata = metadata_for(classifier.labels, classifier.input_spec, classifier.model_id)
    if fmt not in FORMATS:
        raise ModelError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    with staged(out) as partial:
        if fmt == "onnx":
            export_onnx(module, example, partial, metadata, outputs)
        else:
            with warnings.catch_warnings():  # torch marks TorchScript as legacy; it is still what many runtimes load
                warnings.simplefilter("ignore", FutureWarning)
                traced = torch.jit.trace(module, example)
                torch.jit.save(traced, str(partial), _extra_files={f"{METADATA_KEY}.json": json.dumps(metadata)})
        make_readable(partial)
    labels = labels_path_for(out)
    write_text_file(labels, "\n".join(classifier.labels) + "\n")
    return out, labels


def make_readable(path: Path) -> None:
    """Give an exported file (or folder) the mode one the user creates gets (0644 / 0755 with the usual umask;
    mkstemp's 0600 and mkdtemp's 0700 keep out a server that runs as another user)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask)


def write_text_file(path: Path, text: str) -> None:
    """Write a small text file atomically, readable like any file the user writes."""
    with staged(path) as partial:
        partial.write_text(text, encoding="utf-8")
        make_readable(partial)


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict,
                outputs: Sequence[str] = (LOGITS,)) -> None:
    """One self-contained ONNX file (weights inside: torch would put them in a `.data` file beside it, named after
    the temporary file) with a dynamic batch, streamrec's metadata, and `outputs` as the names of its outputs."""
    try:
        import onnx
    except ImportError:
        raise ModelError("ONNX export needs the onnx packages: pip install 'streamrec[onnx]'") from None
    batch = torch.export.Dim("batch", min=1, max=1024)
    argument = next(iter(inspect.signature(module.forward).parameters))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=list(outputs),
                          dynamic_shapes={argument: {0: batch}}, dynamo=True, opset_version=ONNX_OPSET,
                          verbose=False, external_data=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(model, str(path))
