"""Model bundles: a fine-tuned ResNet-18 with its labels, input spec, metrics and provenance in one file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from inference.errors import ModelError
from inference.feature_stats import FeatureStats
from inference.imagenet import build_resnet18, check_resnet18
from inference.model import TorchClassifier
from inference.preprocess import InputSpec

BUNDLE_FORMAT = "streamrec-bundle"
BUNDLE_VERSION = 1
ARCHITECTURE = "resnet18"


@dataclass(frozen=True)
class Bundle:
    """Everything needed to run a fine-tuned model, and what is known about how it was made."""

    state_dict: dict[str, torch.Tensor]
    labels: tuple[str, ...]
    input: InputSpec
    model_id: str
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    features: Optional[FeatureStats] = None
    """The trained labels' feature mean, prototypes and calibration (None in bundles trained before them)."""

    def to_classifier(self, source: Path | str = "bundle") -> TorchClassifier:
        """A classifier running this bundle's weights."""
        check_resnet18(self.state_dict, len(self.labels), Path(str(source)))
        return TorchClassifier.deferred(lambda: build_resnet18(self.state_dict, len(self.labels), Path(str(source))),
                                        self.state_dict, self.labels, self.model_id, self.input)

    def summary(self) -> dict[str, Any]:
        """What `streamrec model info` prints (everything but the weights)."""
        return {
            "model_id": self.model_id,
            "architecture": ARCHITECTURE,
            "labels": list(self.labels),
            "input": {"crop": self.input.crop, "resize": self.input.resize, "mean": list(self.input.mean), "std": list(self.input.std)},
            "metrics": self.metrics,
            "provenance": self.provenance,
            "features": None if self.features is None else {
                "dim": self.features.feature_dim, "prototypes": int(len(self.features.prototypes)),
                "calibrated": bool(self.features.known_similarity),
                "keypoints": int(len(self.features.keypoints))},
        }


def model_id_for(name: str, state_dict: dict[str, torch.Tensor]) -> str:
    """`name-<8 hex>`: a short id that changes whenever the weights do."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        digest.update(key.encode())
        digest.update(state_dict[key].detach().cpu().numpy().tobytes())
    return f"{name}-{digest.hexdigest()[:8]}"


def save_bundle(bundle: Bundle, path: Path) -> Path:
    """Write the bundle atomically (a reader never sees half a file), renamed into place once it reads back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        **json.loads(json.dumps(bundle.summary(), default=str)),  # plain types only: weights_only loading refuses others
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in bundle.state_dict.items()},
    }
    if bundle.features is not None:
        payload["features"] = bundle.features.to_payload()
    handle, temporary = tempfile.mkstemp(prefix=".bundle-", dir=path.parent)
    os.close(handle)
    try:
        with open(temporary, "wb") as handle_out:  # a file object: torch derives no archive name from ".bundle-…"
            torch.save(payload, handle_out)
        os.chmod(temporary, 0o644)
        load_bundle(Path(temporary))
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def load_bundle(path: Path) -> Bundle:
    """Read and check a bundle; raise ModelError saying what is wrong with a damaged or inconsistent one."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model bundle {path} not found; train one with `streamrec finetune DATA_DIR --out {path}`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
        raise ModelError(f"model bundle {path} is damaged or truncated ({reason}); copy it again") from None
    return _check(payload, path)


def _check(payload: Any, path: Path) -> Bundle:
    if not isinstance(payload, dict) or payload.get("format") != BUNDLE_FORMAT:
        raise ModelError(f"{path} is not a streamrec model bundle")
    if payload.get("format_version", 0) > BUNDLE_VERSION:
        raise ModelError(f"{path} was written by a newer streamrec (bundle format {payload.get('format_version')}); upgrade")
    if payload.get("architecture") != ARCHITECTURE:
        raise ModelError(f"{path}: architecture {payload.get('architecture')!r} is not supported (only {ARCHITECTURE})")
    labels = payload.get("labels")
    state = payload.get("state_dict")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise ModelError(f"{path}: the bundle's label list is missing or invalid")
    if len(set(labels)) != len(labels):
        raise ModelError(f"{path}: the bundle's labels are not unique")
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise ModelError(f"{path}: the bundle holds no ResNet-18 weights")
    outputs = state["fc.weight"].shape[0]
    if outputs != len(labels):
        raise ModelError(f"{path}: {len(labels)} labels do not match the model head's {outputs} outputs")
    spec = payload.get("input") or {}
    try:
        input_spec = InputSpec(int(spec["crop"]), int(spec["resize"]), tuple(spec["mean"]), tuple(spec["std"]))
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{path}: the bundle's input spec is missing or invalid") from None
    return Bundle(state, tuple(labels), input_spec, str(payload.get("model_id") or path.stem),
                  dict(payload.get("metrics") or {}), dict(payload.get("provenance") or {}),
                  FeatureStats.from_payload(payload.get("features"), len(labels)))
