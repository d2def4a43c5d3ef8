"""A model served by Triton Inference Server (or any Open Inference Protocol server): `triton:grpc://HOST:PORT/MODEL`
or `triton:http://HOST:PORT/MODEL`, through `tritonclient` (`pip install 'streamrec[remote]'`).

Labels and input settings come from the model's config when `streamrec model export --format triton` wrote it
(parameter "streamrec"), else from `--labels` and `model.input_size/mean/std`. A model that takes uint8 crops gets
the crops the preprocessing makes (a quarter of the bytes of float32); one that takes FP32 gets normalized NCHW.
Every call is bounded by `model.remote_timeout_ms`."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import torch

from config.schema import ModelConfig
from inference.artifacts import first_line
from inference.errors import ModelError
from inference.external import read_labels
from inference.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec, rgb_uint8_crops

PREFIX = "triton:"
DEFAULT_TIMEOUT_S = 1.0
MAX_MESSAGE_BYTES = 2**31 - 1
GRPC_CHANNEL_ARGS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # gRPC's own reconnect backoff grows to 120 s: a server back after an outage would wait that long.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass(frozen=True)
class RemoteSpec:
    """Where the model is served: protocol (grpc or http), HOST:PORT, and the model's name."""

    protocol: str
    address: str
    model: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.protocol}://{self.address}/{self.model}"


def is_remote_spec(spec: str) -> bool:
    """Whether a model spec names a served model (`triton:…`)."""
    return spec.strip().startswith(PREFIX)


def parse_remote_spec(spec: str) -> RemoteSpec:
    """`triton:grpc://HOST:PORT/MODEL` or `triton:http://…`; ModelError saying the form otherwise."""
    parts = urlsplit(spec[len(PREFIX):])
    model = parts.path.strip("/")
    if parts.scheme not in ("grpc", "http") or not parts.netloc or not model or "/" in model:
        raise ModelError(f"model spec {spec!r}: use triton:grpc://HOST:PORT/MODEL or triton:http://HOST:PORT/MODEL")
    return RemoteSpec(parts.scheme, parts.netloc, model)


class _Client:
    """The protocol's tritonclient module and one client; calls are serialized for HTTP (its client is not
    thread-safe), concurrent for gRPC."""

    def __init__(self, spec: RemoteSpec, timeout_s: float) -> None:
        try:
            if spec.protocol == "grpc":
                import tritonclient.grpc as module
            else:
                import tritonclient.http as module
        except ImportError:
            raise ModelError("a triton: model needs tritonclient: pip install 'streamrec[remote]'") from None
        self.module, self.spec, self.timeout_s = module, spec, timeout_s
        if spec.protocol == "grpc":
            self.client = module.InferenceServerClient(spec.address, channel_args=GRPC_CHANNEL_ARGS)
        else:
            self.client = module.InferenceServerClient(spec.address, connection_timeout=timeout_s,
                                                       network_timeout=timeout_s)
        self._lock = threading.Lock() if spec.protocol == "http" else None

    def model_description(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(metadata, config) as plain dicts."""
        if self.spec.protocol == "grpc":
            metadata = self.client.get_model_metadata(self.spec.model, as_json=True, client_timeout=self.timeout_s)
            config = self.client.get_model_config(self.spec.model, as_json=True, client_timeout=self.timeout_s)
            return metadata, config.get("config", config)
        return self.client.get_model_metadata(self.spec.model), self.client.get_model_config(self.spec.model)

    def infer(self, input_name: str, datatype: str, array: np.ndarray, output_name: str) -> np.ndarray:
        request = self.module.InferInput(input_name, list(array.shape), datatype)
        request.set_data_from_numpy(array)
        outputs = [self.module.InferRequestedOutput(output_name)]
        if self._lock is None:
            result = self.client.infer(self.spec.model, [request], outputs=outputs, client_timeout=self.timeout_s)
        else:
            with self._lock:
                result = self.client.infer(self.spec.model, [request], outputs=outputs)
        return result.as_numpy(output_name)


class RemoteClassifier:
    """Logits from the server for each batch; same Classifier interface as the local paths."""

    backend, precision = "triton", "remote"

    def __init__(self, spec: RemoteSpec, model: ModelConfig, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._client = _Client(spec, timeout_s)
        try:
            metadata, config = self._client.model_description()
        except Exception as exc:
            raise ModelError(f"{spec}: the server does not describe the model ({first_line(exc)}); check the "
                             "address, the model name, and that the server is up") from None
        self._input, self._output = metadata["inputs"][0], metadata["outputs"][0]
        self.takes_rgb_uint8 = self._input["datatype"] == "UINT8"
        exported = _exported_metadata(config)
        self.labels = read_labels(model.labels) if model.labels is not None else tuple(exported.get("labels") or ())
        if not self.labels:
            raise ModelError(f"{spec} needs a labels file: pass --labels FILE (model.labels), one label per line")
        crop = model.input_size or int(exported.get("crop", 224))
        self.input_spec = InputSpec.for_crop(crop, tuple(model.mean or exported.get("mean", IMAGENET_MEAN)),
                                             tuple(model.std or exported.get("std", IMAGENET_STD)))
        self.model_id = str(exported.get("model_id") or f"triton-{spec.model}")
        self.description = f"{spec} ({'uint8 crops' if self.takes_rgb_uint8 else 'float32'})"
        self.spec = spec
        self.timeout_s = timeout_s

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits (float32) for uint8 NHWC RGB crops or a normalized float NCHW batch (converted to what the
        served model takes)."""
        if self.takes_rgb_uint8 and batch.dtype != torch.uint8:
            batch = rgb_uint8_crops(batch, self.input_spec)
        elif not self.takes_rgb_uint8 and batch.dtype == torch.uint8:
            raise ValueError("this served model takes float32 NCHW batches")
        array = np.ascontiguousarray(batch.numpy())
        logits = self._client.infer(self._input["name"], self._input["datatype"], array, self._output["name"])
        return torch.from_numpy(np.array(logits, dtype=np.float32, copy=True))


def _exported_metadata(config: dict[str, Any]) -> dict[str, Any]:
    """What `model export --format triton` put into the config's "streamrec" parameter ({} when absent)."""
    value = ((config.get("parameters") or {}).get("streamrec") or {}).get("string_value")
    try:
        return json.loads(value) if value else {}
    except ValueError:
        return {}


def load_remote(spec: str, model: ModelConfig) -> RemoteClassifier:
    """The served model named by `spec`; ModelError (exit 78) when it cannot be reached or described."""
    return RemoteClassifier(parse_remote_spec(spec), model, model.remote_timeout_ms / 1000.0)
