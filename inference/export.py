"""Write a loaded torch classifier as ONNX or TorchScript, with its labels beside it."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from inference.errors import ModelError
from inference.external import METADATA_KEY, metadata_for
from inference.model import TorchClassifier

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 18


def labels_path_for(out: Path) -> Path:
    """Where an export's labels file goes: `model.onnx` → `model.labels.txt`."""
    return out.with_suffix(".labels.txt")


def export_classifier(classifier: TorchClassifier, fmt: str, out: Path) -> tuple[Path, Path]:
    """Export to `out` (ONNX with a dynamic batch, or traced TorchScript) and write the labels file."""
    if not isinstance(classifier, TorchClassifier):
        raise ModelError("only torch models (resnet18 or a bundle) can be exported")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = classifier.module.eval()
    example = torch.zeros((2, 3, classifier.input_spec.crop, classifier.input_spec.crop))
    metadata = metadata_for(classifier.labels, classifier.input_spec, classifier.model_id)
    handle, temporary = tempfile.mkstemp(prefix="partial-", suffix=out.suffix, dir=out.parent)
    os.close(handle)
    try:
        if fmt == "onnx":
            _export_onnx(module, example, Path(temporary), metadata)
        elif fmt == "torchscript":
            with warnings.catch_warnings():  # torch marks TorchScript as legacy; it is still what many runtimes load
                warnings.simplefilter("ignore", FutureWarning)
                traced = torch.jit.trace(module, example)
                torch.jit.save(traced, temporary, _extra_files={f"{METADATA_KEY}.json": json.dumps(metadata)})
        else:
            raise ModelError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
        os.replace(temporary, out)
    finally:
        Path(temporary).unlink(missing_ok=True)
    labels = labels_path_for(out)
    labels.write_text("\n".join(classifier.labels) + "\n", encoding="utf-8")
    return out, labels


def _export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict) -> None:
    try:
        import onnx
    except ImportError:
        raise ModelError("ONNX export needs the onnx packages: pip install 'streamrec[onnx]'") from None
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_shapes={"x": {0: batch}}, dynamo=True, opset_version=ONNX_OPSET, verbose=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(model, str(path))
