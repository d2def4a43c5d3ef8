"""Turn a model spec from the config (`resnet18`, a bundle, `onnx:FILE`, `torchscript:FILE`, `triton:…`) into a
Classifier."""

from __future__ import annotations

from pathlib import Path

from config.schema import ModelConfig
from inference.bundle import load_bundle
from inference.errors import ModelError
from inference.external import load_onnx, load_torchscript
from inference.imagenet import load_imagenet_resnet18
from inference.model import Classifier
from inference.remote import PREFIX as REMOTE_PREFIX
from inference.remote import load_remote

EXTERNAL_PREFIXES = ("onnx:", "torchscript:")


def load_classifier(model: ModelConfig, threads: int = 1) -> Classifier:
    """Load the configured model; raise ModelError (exit 78) saying how to fix a missing or bad one."""
    spec = model.spec.strip()
    if spec == "resnet18":
        return load_imagenet_resnet18(model.weights, model.allow_download)
    if spec.startswith(REMOTE_PREFIX):
        return load_remote(spec, model)
    kind, _, target = spec.partition(":")
    if spec.startswith(EXTERNAL_PREFIXES):
        if not target:
            raise ModelError(f"model spec {spec!r} needs a file: {kind}:/path/to/model")
        path = Path(target).expanduser()
        return load_onnx(path, model, threads) if kind == "onnx" else load_torchscript(path, model)
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelError(
            f"model {spec!r} not found: use resnet18, a bundle file from `streamrec finetune`, onnx:FILE or torchscript:FILE"
        )
    return load_bundle(path).to_classifier(path)
