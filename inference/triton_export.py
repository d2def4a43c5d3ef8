"""Write a local model as a ready Triton Inference Server model repository (also what other Open Inference
Protocol servers with an ONNX Runtime backend load):

    REPO/NAME/config.pbtxt      max batch, dynamic batching that rejects rather than piles up, instances, labels
    REPO/NAME/labels.txt        one label per line (Triton's `label_filename` looks in the model folder)
    REPO/NAME/1/model.onnx      uint8 NHWC RGB crops in, normalized inside the graph; logits out

Kiosks send the uint8 crops their preprocessing makes: a quarter of the bytes of float32.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from inference.artifacts import staged
from inference.errors import ModelError
from inference.export import export_onnx, make_readable
from inference.external import metadata_for
from inference.model import TorchClassifier
from inference.preprocess import InputSpec

INPUT_NAME, OUTPUT_NAME, LABELS_FILE, MODEL_FILE = "input", "logits", "labels.txt", "model.onnx"
VERSION = "1"


@dataclass(frozen=True)
class TritonSettings:
    """How the server runs the model: the largest batch, how long a request may wait for others to join its batch,
    how many may wait (beyond: rejected at once, so a kiosk counts a drop instead of waiting), where it runs."""

    max_batch: int = 64
    queue_delay_us: int = 2000
    queue_timeout_us: int = 100_000
    max_queue: int = 256
    instances: int = 1
    kind: str = "cpu"


class RgbUint8Input(torch.nn.Module):
    """`inner` behind the preprocessing's normalization: takes uint8 NHWC RGB crops."""

    def __init__(self, inner: torch.nn.Module, spec: InputSpec) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("scale", torch.tensor([1.0 / (255.0 * s) for s in spec.std]).view(1, 3, 1, 1))
        self.register_buffer("offset", torch.tensor([m / s for m, s in zip(spec.mean, spec.std)]).view(1, 3, 1, 1))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.inner(rgb.permute(0, 3, 1, 2).float() * self.scale - self.offset)


def model_name(model_id: str) -> str:
    """A Triton model name (a folder name) from a model id."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", model_id).strip("-.")
    return name or "streamrec"


def config_text(name: str, labels: int, crop: int, settings: TritonSettings, metadata: dict) -> str:
    """config.pbtxt for the exported model."""
    kind = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}[settings.kind]
    return f"""name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {settings.max_batch}
input [
  {{
    name: "{INPUT_NAME}"
    data_type: TYPE_UINT8
    format: FORMAT_NHWC
    dims: [ {crop}, {crop}, 3 ]
  }}
]
output [
  {{
    name: "{OUTPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {labels} ]
    label_filename: "{LABELS_FILE}"
  }}
]
dynamic_batching {{
  max_queue_delay_microseconds: {settings.queue_delay_us}
  default_queue_policy {{
    timeout_action: REJECT
    default_timeout_microseconds: {settings.queue_timeout_us}
    max_queue_size: {settings.max_queue}
  }}
}}
instance_group [
  {{
    count: {settings.instances}
    kind: {kind}
  }}
]
parameters {{
  key: "streamrec"
  value: {{ string_value: {json.dumps(json.dumps(metadata))} }}
}}
"""


def export_triton(classifier: TorchClassifier, repository: Path, name: str | None = None,
                  settings: TritonSettings = TritonSettings()) -> Path:
    """Write (or replace) REPO/NAME; returns the model folder. Built beside it and renamed into place, so a server
    polling the repository never loads half a model."""
    if not isinstance(classifier, TorchClassifier):
        raise ModelError("only torch models (resnet18 or a bundle) can be exported")
    if settings.kind not in ("cpu", "gpu"):
        raise ModelError(f"instance kind {settings.kind!r}: use cpu or gpu")
    name = model_name(name or classifier.model_id)
    crop = classifier.input_spec.crop
    metadata = metadata_for(classifier.labels, classifier.input_spec, classifier.model_id)
    module = RgbUint8Input(classifier.module.eval(), classifier.input_spec).eval()
    example = torch.zeros((2, crop, crop, 3), dtype=torch.uint8)
    folder = Path(repository) / name
    with staged(folder, directory=True) as partial:
        (partial / VERSION).mkdir()
        export_onnx(module, example, partial / VERSION / MODEL_FILE, {**metadata, "input_format": "rgb_uint8_nhwc"})
        (partial / LABELS_FILE).write_text("\n".join(classifier.labels) + "\n", encoding="utf-8")
        (partial / "config.pbtxt").write_text(config_text(name, len(classifier.labels), crop, settings, metadata))
        for path in (partial, *partial.rglob("*")):
            make_readable(path)
    return folder
