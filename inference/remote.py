"""A model served by Triton Inference Server (or any Open Inference Protocol server): `triton:grpc://HOST:PORT/MODEL`
or `triton:http://HOST:PORT/MODEL` (`grpcs://`, `https://`: TLS), through `tritonclient` (`pip install
'streamrec[remote]'`); TLS files and the headers of every call come from inference.remote_auth.

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

from config.redact import redact
from config.schema import ModelConfig
from inference.artifacts import first_line
from inference.errors import ModelError
from inference.external import read_labels
from inference.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec, rgb_uint8_crops
from inference.remote_auth import HeaderPlugin, RemoteAuth, refusal_hint

PREFIX = "triton:"
SCHEMES = {"grpc": ("grpc", False), "http": ("http", False), "grpcs": ("grpc", True), "https": ("http", True)}
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


class ServerUnreachable(ModelError):
    """The server does not answer at all (down, or not there yet): worth retrying, unlike a wrong model name."""


@dataclass(frozen=True)
class RemoteSpec:
    """Where the model is served: protocol (grpc or http), HOST:PORT, the model's name, and whether over TLS."""

    protocol: str
    address: str
    model: str
    tls: bool = False

    def __str__(self) -> str:
        return f"{PREFIX}{self.protocol}{'s' if self.tls else ''}://{self.address}/{self.model}"


def is_remote_spec(spec: str) -> bool:
    """Whether a model spec names a served model (`triton:…`)."""
    return spec.strip().startswith(PREFIX)


def parse_remote_spec(spec: str) -> RemoteSpec:
    """`triton:grpc://HOST:PORT/MODEL`, `triton:http://…`, or over TLS `triton:grpcs://…`, `triton:https://…`;
    ModelError saying the form otherwise."""
    parts = urlsplit(spec[len(PREFIX):])
    model = parts.path.strip("/")
    if "@" in parts.netloc:
        raise ModelError(f"model spec {redact(spec)!r}: put credentials in model.remote_token, not in the address")
    if parts.scheme not in SCHEMES or not parts.netloc or not model or "/" in model:
        raise ModelError(f"model spec {redact(spec)!r}: use triton:grpc://HOST:PORT/MODEL or "
                         "triton:http://HOST:PORT/MODEL (triton:grpcs://… or triton:https://… for TLS)")
    protocol, tls = SCHEMES[parts.scheme]
    return RemoteSpec(protocol, parts.netloc, model, tls)


class _Client:
    """The protocol's tritonclient module and its client: one for gRPC (its calls run concurrently), one per thread
    for HTTP (its client is not thread-safe), so `model.remote_inflight` calls run at once either way."""

    def __init__(self, spec: RemoteSpec, timeout_s: float, auth: RemoteAuth = RemoteAuth()) -> None:
        try:
            if spec.protocol == "grpc":
                import tritonclient.grpc as module
            else:
                import tritonclient.http as module
        except ImportError:
            raise ModelError("a triton: model needs tritonclient: pip install 'streamrec[remote]'") from None
        self.module, self.spec, self.timeout_s, self._auth = module, spec, timeout_s, auth
        self._shared = self._new_client() if spec.protocol == "grpc" else None
        self._per_thread = threading.local()

    @property
    def client(self) -> Any:
        """The client for the calling thread."""
        if self._shared is not None:
            return self._shared
        if getattr(self._per_thread, "client", None) is None:
            self._per_thread.client = self._new_client()
        return self._per_thread.client

    def _new_client(self) -> Any:
        auth, spec, timeout_s = self._auth, self.spec, self.timeout_s
        if spec.protocol == "grpc":
            tls = auth.grpc_options() if spec.tls else {}
            client = self.module.InferenceServerClient(spec.address, channel_args=GRPC_CHANNEL_ARGS, **tls)
        else:
            tls = auth.http_options() if spec.tls else {}
            client = self.module.InferenceServerClient(spec.address, connection_timeout=timeout_s,
                                                       network_timeout=timeout_s, **tls)
        if auth.headers:
            client.register_plugin(HeaderPlugin(auth.headers_for(spec.protocol)))
        return client

    def _bounded(self) -> dict[str, float]:
        """The per-call timeout argument: gRPC takes one per call; the HTTP client has it from its construction."""
        return {"client_timeout": self.timeout_s} if self.spec.protocol == "grpc" else {}

    def model_description(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(metadata, config) as plain dicts."""
        if self.spec.protocol == "grpc":
            metadata = self.client.get_model_metadata(self.spec.model, as_json=True, **self._bounded())
            config = self.client.get_model_config(self.spec.model, as_json=True, **self._bounded())
            return metadata, config.get("config", config)
        return self.client.get_model_metadata(self.spec.model), self.client.get_model_config(self.spec.model)

    def live(self) -> bool:
        """Whether the server answers at all (bounded by the call timeout)."""
        try:
            return bool(self.client.is_server_live(**self._bounded()))
        except Exception:
            return False

    def model_ready(self) -> bool:
        """Whether the server is up and its model ready to answer (bounded by the call timeout)."""
        try:
            return bool(self.client.is_model_ready(self.spec.model, **self._bounded()))
        except Exception:
            return False

    def infer(self, input_name: str, datatype: str, array: np.ndarray, output_name: str) -> np.ndarray:
        request = self.module.InferInput(input_name, list(array.shape), datatype)
        request.set_data_from_numpy(array)
        outputs = [self.module.InferRequestedOutput(output_name)]
        result = self.client.infer(self.spec.model, [request], outputs=outputs, **self._bounded())
        return result.as_numpy(output_name)


class RemoteClassifier:
    """Logits from the server for each batch; same Classifier interface as the local paths."""

    backend, precision = "triton", "remote"

    def __init__(self, spec: RemoteSpec, model: ModelConfig, timeout_s: float = DEFAULT_TIMEOUT_S,
                 auth: RemoteAuth = RemoteAuth()) -> None:
        self._client = _Client(spec, timeout_s, auth)
        try:
            metadata, config = self._client.model_description()
        except Exception as exc:
            raise self._failure(spec, auth.scrub(first_line(exc))) from None
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

    def _failure(self, spec: RemoteSpec, reason: str) -> ModelError:
        """Why the model could not be described: TLS or credentials refused, no answer at all, or no such model."""
        hint = refusal_hint(reason)
        if hint is not None:
            return ModelError(f"{spec}: {hint} ({reason})")
        if not self._client.live():
            tls = ", and model.remote_ca/remote_cert/remote_key (a server may close TLS connections it refuses)"
            return ServerUnreachable(f"{spec}: the server does not answer ({reason}); check the address and that "
                                     f"the server is up{tls if spec.tls else ''}")
        return ModelError(f"{spec}: the server does not describe the model ({reason}); check the address, the model "
                          "name, and that the server is up")

    def ready(self) -> bool:
        """Whether the server would answer now (a cheap check, bounded by the call timeout)."""
        return self._client.model_ready()

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
    return RemoteClassifier(parse_remote_spec(spec), model, model.remote_timeout_ms / 1000.0,
                            RemoteAuth.from_config(model))
