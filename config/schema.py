"""The configuration schema: one pydantic model per TOML table, unknown keys refused."""

from __future__ import annotations

import enum
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal, Optional
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, DirectoryPath, Field, FilePath, SecretStr, field_validator, model_validator

from config.listen import ListenAddress, parse_listen
from config.sources import SourceSpec, parse_source_spec

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]


class StrictModel(BaseModel):
    """Base for every config table: frozen, unknown keys are an error, and so are nan and inf."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DropPolicy(str, enum.Enum):
    """What a camera's full queue does with a new frame."""

    AUTO = "auto"
    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"


class CameraConfig(StrictModel):
    """One camera: where frames come from and how they are queued."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$", description="Camera id used in topics and heartbeats.")
    source: str = Field(description="usb:N, /dev/videoN, rtsp://…, file:PATH or synthetic[:scene].")
    queue_size: int = Field(2, ge=1, le=64, description="Frames buffered between capture and the worker.")
    drop_policy: DropPolicy = Field(
        DropPolicy.AUTO,
        description="auto: drop_oldest for live or paced sources, block for unpaced files; block is refused for live cameras.",
    )
    pace: bool = Field(True, description="File and synthetic sources: deliver at the source's fps (false: as fast as consumed).")
    loop: bool = Field(False, description="File sources: start again at the end instead of ending the run.")
    width: Optional[int] = Field(None, ge=16, le=8192, description="Requested frame width (USB, synthetic).")
    height: Optional[int] = Field(None, ge=16, le=8192, description="Requested frame height (USB, synthetic).")
    fps: Optional[float] = Field(None, gt=0, le=240, description="Requested frame rate (USB, synthetic; files use their own).")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Synthetic sources: random seed of the scene.")
    open_timeout_s: float = Field(10.0, gt=0, le=120, description="Give up opening the camera after this long.")
    read_timeout_s: float = Field(5.0, gt=0, le=120, description="No frame for this long counts as a dead camera.")
    reconnect_initial_s: float = Field(0.5, gt=0, le=60, description="First retry delay after a camera fault.")
    reconnect_max_s: float = Field(2.0, gt=0, le=600, description="Cap of the exponential retry delay (a camera back after an outage streams again within about this plus its open time).")
    frozen_after_s: float = Field(
        10.0, ge=0, le=3600,
        description="Live cameras: the same picture (bit for bit) for this long means a frozen camera: reconnect it (0 = never).",
    )
    blocked_after_s: float = Field(
        3.0, gt=0, le=600,
        description="Frames dropped for this long without the worker taking one: report `blocked` (no reconnect).",
    )

    @field_validator("source")
    @classmethod
    def _valid_source(cls, value: str) -> str:
        parse_source_spec(value)
        return value

    @property
    def spec(self) -> SourceSpec:
        """The parsed source spec."""
        return parse_source_spec(self.source)

    @property
    def effective_drop_policy(self) -> DropPolicy:
        """The drop policy with `auto` resolved for this source."""
        if self.drop_policy is not DropPolicy.AUTO:
            return self.drop_policy
        paced_or_live = self.spec.kind.is_live or self.pace
        return DropPolicy.DROP_OLDEST if paced_or_live else DropPolicy.BLOCK

    @model_validator(mode="after")
    def _live_sources_never_block(self) -> "CameraConfig":
        if self.drop_policy is DropPolicy.BLOCK and self.spec.kind.is_live:
            raise ValueError("drop_policy = block is only for file and synthetic sources: a live camera would build up lag")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be at least reconnect_initial_s")
        return self


class ModelConfig(StrictModel):
    """Which classifier to run and how."""

    spec: str = Field("resnet18", description="resnet18, a bundle path, onnx:FILE, torchscript:FILE, or a served model: "
                                              "triton:grpc://HOST:PORT/MODEL or triton:http://HOST:PORT/MODEL "
                                              "(grpcs:// and https:// for TLS).")
    weights: Optional[Path] = Field(None, description="Explicit ResNet-18 weights file (else the torch hub cache).")
    labels: Optional[Path] = Field(None, description="Labels file (one per line) for onnx: and torchscript: models.")
    allow_download: bool = Field(False, description="May fetch the official ImageNet weights when they are missing.")
    top_k: int = Field(3, ge=1, le=20, description="How many labels each result carries.")
    unknown_threshold: float = Field(0.98, ge=0.5, le=1.0, description="Bundles with feature statistics: a result whose "
                                     "unknown_score reaches this is flagged unknown (0.98: further from every known "
                                     "product than 98% of the known validation pictures).")
    threads: int = Field(0, ge=0, le=256, description="Model threads in all; 0 = the CPUs this process may use.")
    lanes: int = Field(0, ge=0, le=64, description="Batches the model runs at once, each on threads/lanes threads; "
                       "0 = one per thread (at most 4). 1 gives the shortest time per batch, more give more throughput.")
    backend: Literal["auto", "torch", "openvino"] = Field(
        "auto", description="auto (torch, and OpenVINO when installed), torch, or openvino (pip install 'streamrec[openvino]')."
    )
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto", description="auto: the fastest path whose top-1 agrees with fp32 on ≥ min_agreement of calibration frames."
    )
    compile: bool = Field(False, description="torch fp32/bf16: run through torch.compile (int8 is always compiled).")
    min_agreement: float = Field(0.99, ge=0.5, le=1.0, description="auto: least top-1 agreement with fp32 a path needs.")
    calibration_dir: Optional[Path] = Field(
        None, description="Pictures from this kiosk's cameras for int8 calibration and auto's checks (else rendered ones)."
    )
    input_size: Optional[int] = Field(None, ge=32, le=1024, description="Square input size for onnx:/torchscript: models (224).")
    mean: Optional[tuple[float, float, float]] = Field(None, description="RGB normalization mean for external models.")
    std: Optional[tuple[Positive, Positive, Positive]] = Field(None, description="RGB normalization std for external models.")
    remote_timeout_ms: int = Field(1000, ge=10, le=60_000, description="triton: models: the longest a call may take "
                                   "(then the batch fails and is counted).")
    remote_inflight: int = Field(2, ge=1, le=16, description="triton: models: batches sent to the server at once, so "
                                 "network time overlaps capture (results still leave in capture order).")
    remote_ca: Optional[Path] = Field(None, description="triton:grpcs:/https: models: the CA bundle (PEM) that signed the "
                                      "server's certificate (else the system's trust store).")
    remote_cert: Optional[Path] = Field(None, description="triton:grpcs:/https: models: client certificate (PEM) for "
                                        "mutual TLS, with remote_key.")
    remote_key: Optional[Path] = Field(None, description="triton:grpcs:/https: models: the client certificate's "
                                       "unencrypted private key (PEM).")
    remote_token: Optional[SecretStr] = Field(None, description="triton: models: bearer token sent as `authorization: "
                                              "Bearer TOKEN` with every call (else $STREAMREC_REMOTE_TOKEN); never logged.")
    remote_headers: dict[str, SecretStr] = Field({}, description="triton: models: more headers (gRPC metadata) sent "
                                                 "with every call, e.g. an API key; values never logged.")
    fallback: Optional[str] = Field(None, description="triton: models: a local model spec (resnet18, a bundle, onnx:…) "
                                    "that serves while the server does not answer; results name the model that made them.")

    @field_validator("fallback")
    @classmethod
    def _local_fallback(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and (not value.strip() or value.strip().startswith("triton:")):
            raise ValueError("model.fallback must be a local model (resnet18, a bundle path, onnx:FILE, torchscript:FILE)")
        return value

    @field_validator("remote_token")
    @classmethod
    def _printable_token(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        if value is not None and (not value.get_secret_value().strip() or _has_control(value.get_secret_value())):
            raise ValueError("model.remote_token must be the token alone: not empty, no newlines or control characters")
        return value

    @field_validator("remote_headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, header in value.items():
            if name.lower() == "authorization":
                raise ValueError("put the bearer token in model.remote_token, not in an authorization header")
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
                raise ValueError(f"header name {name!r}: use letters, digits, '-', '_' and '.'")
            if _has_control(header.get_secret_value()):
                raise ValueError(f"header {name!r}: the value holds newlines or control characters")
        return value

    @model_validator(mode="after")
    def _tls_files_need_tls(self) -> "ModelConfig":
        if (self.remote_cert is None) != (self.remote_key is None):
            raise ValueError("set model.remote_cert and model.remote_key together (mutual TLS), or neither")
        uses_files = any(path is not None for path in (self.remote_ca, self.remote_cert, self.remote_key))
        if uses_files and self.spec.strip().startswith(("triton:grpc://", "triton:http://")):
            raise ValueError("model.remote_ca/remote_cert/remote_key are for TLS: use triton:grpcs://… or triton:https://…")
        return self


def _has_control(text: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in text)


class BatchingConfig(StrictModel):
    """How the worker groups frames into batches."""

    max_batch: int = Field(8, ge=1, le=64, description="Most frames per model call.")
    max_wait_ms: float = Field(10.0, ge=0, le=1000, description="Longest a frame waits for a batch to fill.")


def binds_beyond_loopback(endpoint: str) -> bool:
    """True when a tcp:// bind address is reachable from other machines (`*`, 0.0.0.0, an interface, a LAN address)."""
    if not endpoint.startswith("tcp://"):
        return False  # ipc:// is a local file, guarded by its directory's permissions
    host = endpoint[len("tcp://"):].rpartition(":")[0].strip("[]")
    if host in ("localhost", "lo"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # `*`, an interface name or a host name


class PublisherConfig(StrictModel):
    """The ZeroMQ PUB socket that POS processes subscribe to."""

    endpoint: str = Field(DEFAULT_ENDPOINT, description="tcp://HOST:PORT or ipc://PATH to bind.")
    heartbeat_interval_s: float = Field(0.5, ge=0.05, le=1.0, description="Heartbeat period (at most 1 s).")
    send_hwm: int = Field(1000, ge=1, le=1_000_000, description="ZeroMQ send high-water mark per subscriber.")
    queue_size: int = Field(256, ge=1, le=100_000, description="Results waiting for the publisher thread before dropping.")
    linger_ms: int = Field(200, ge=0, le=5000, description="How long close() may wait for unsent messages.")
    curve_secret_key: Optional[FilePath] = Field(
        None, description="The publisher's CurveZMQ secret key file (`streamrec keys generate`); turns on encryption "
                          "and client authentication, required to bind beyond loopback.")
    curve_clients: Optional[DirectoryPath] = Field(
        None, description="Directory of the public keys (*.key) of the clients allowed to subscribe; required with curve_secret_key.")
    allow_insecure: bool = Field(
        False, description="Bind beyond loopback without CurveZMQ: anyone on the network may subscribe.")

    @field_validator("endpoint")
    @classmethod
    def _supported_transport(cls, value: str) -> str:
        if not value.startswith(("tcp://", "ipc://")):
            raise ValueError("endpoint must start with tcp:// or ipc://")
        return value

    @model_validator(mode="after")
    def _secured_beyond_loopback(self) -> "PublisherConfig":
        if self.curve_secret_key is not None and self.curve_clients is None:
            raise ValueError("curve_clients must be set with curve_secret_key: a directory of the allowed POS clients' "
                             "public keys (without it CURVE admits anyone who knows the server key)")
        if self.curve_secret_key is None and binds_beyond_loopback(self.endpoint) and not self.allow_insecure:
            raise ValueError(f"curve_secret_key is required to bind {self.endpoint} beyond loopback "
                             "(create keys with `streamrec keys generate DIR`), or set allow_insecure = true")
        return self

    @property
    def curve(self) -> bool:
        """True when the publisher encrypts and authenticates its subscribers."""
        return self.curve_secret_key is not None


class OverlayConfig(StrictModel):
    """The on-screen window per camera."""

    enabled: bool = Field(True, description="Show windows when a display is available.")
    window_title: str = Field("streamrec", min_length=1, max_length=64, description="Prefix of each window's title.")
    max_fps: float = Field(30.0, gt=0, le=120, description="Cap on window refreshes per second.")
    fullscreen: bool = Field(False, description="Fill the screen (kiosk displays).")


class EventsConfig(StrictModel):
    """The stable-item tracker behind item_present / item_removed."""

    enter_frames: int = Field(5, ge=1, le=300, description="Consecutive top-1 frames before item_present.")
    min_score: Fraction = Field(0.5, description="Score a frame needs to count towards item_present.")
    exit_frames: int = Field(5, ge=1, le=300, description="Consecutive frames without the item before item_removed.")
    exit_score: Fraction = Field(0.3, description="Below this the present item counts as gone (hysteresis).")
    ignore_labels: tuple[str, ...] = Field((), description="Labels that never become items (e.g. an empty-lane class).")
    unknown_frames: int = Field(0, ge=0, le=300, description="Consecutive unknown frames before item_unknown; 0 = twice "
                                "enter_frames (a hand passing over the lane is briefly unlike every product, a product "
                                "put down stays).")
    ambiguous_items: bool = Field(True, description="A stable item split between known products (no label reaches "
                                  "min_score, the top three together do; models with feature statistics) becomes "
                                  "item_unknown with reason \"ambiguous\" and its pick list instead of no event.")
    ambiguous_frames: int = Field(0, ge=0, le=300, description="Consecutive frames, mostly split between known "
                                  "products, before such an item asks for a pick; 0 = unknown_frames plus enter_frames "
                                  "(a product moving in is split while half in view, then settles into one label).")

    @property
    def frames_for_unknown(self) -> int:
        """Consecutive unknown frames that make an unknown item."""
        return self.unknown_frames or 2 * self.enter_frames

    @property
    def frames_for_ambiguous(self) -> int:
        """Consecutive frames, mostly split between known products, that make an item asking for a pick."""
        return self.ambiguous_frames or self.frames_for_unknown + self.enter_frames

    @model_validator(mode="after")
    def _hysteresis_order(self) -> "EventsConfig":
        if self.exit_score > self.min_score:
            raise ValueError("exit_score must not exceed min_score")
        return self


class SkipConfig(StrictModel):
    """Reuse a camera's last result while its picture does not change (saves CPU on an idle lane)."""

    enabled: Literal["auto", "on", "off"] = Field("auto", description="auto: on for live cameras (USB, RTSP), off for files and synthetic scenes.")
    threshold: float = Field(2.0, ge=0.0, le=255.0, description="Mean absolute difference (grey levels, 32x24 thumbnail) below which a frame counts as unchanged.")
    max_reuse: int = Field(15, ge=1, le=10_000, description="Classify again at least every this many frames, changed or not.")


class FreshnessConfig(StrictModel):
    """When a result is too old to trust."""

    stale_after_ms: float = Field(500.0, gt=0, le=60_000, description="Results older than this are marked stale.")


class LoggingConfig(StrictModel):
    """Log output."""

    level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="Log level.")


class HttpConfig(StrictModel):
    """The web interface and HTTP API inside `streamrec run`."""

    enabled: bool = Field(False, description="Serve the status page, /predict, /healthz and /metrics (--http sets true).")
    listen: str = Field("127.0.0.1:8080", description="HOST:PORT to listen on; beyond loopback a token is required.")
    token: Optional[SecretStr] = Field(None, description="Access token for every endpoint but /healthz (16+ characters).")
    token_file: Optional[Path] = Field(None, description="File whose first line is the access token (instead of token).")
    preview_fps: float = Field(5.0, ge=0.5, le=30, description="Cap on preview frames per second per camera (MJPEG).")
    preview_width: int = Field(640, ge=160, le=1920, description="Previews are scaled down to at most this width.")
    max_viewers: int = Field(8, ge=1, le=64, description="Most preview streams open at once; more get 503.")
    max_upload_mb: float = Field(10.0, gt=0, le=100, description="Largest image /predict accepts, in MB.")

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("token")
    @classmethod
    def _long_token(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("use at least 16 characters (e.g. the output of `openssl rand -hex 16`)")
        return value

    @property
    def address(self) -> ListenAddress:
        """The parsed listen address."""
        return parse_listen(self.listen)

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> "HttpConfig":
        if self.token is not None and self.token_file is not None:
            raise ValueError("set http.token or http.token_file, not both")
        if self.enabled and not self.address.is_loopback and self.token is None and self.token_file is None:
            raise ValueError(f"listening on {self.address} (beyond loopback) needs http.token or http.token_file")
        return self


class MqttConfig(StrictModel):
    """Events and camera states to an MQTT broker from inside `streamrec run` (what `streamrec bridge` does)."""

    broker: Optional[str] = Field(None, description="mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS); unset: no MQTT.")
    kiosk: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$",
                                 description="The kiosk's name in the topics (default: the host name).")
    results: bool = Field(False, description="Also publish every result (QoS 0).")
    username: Optional[str] = Field(None, description="Broker user name (or STREAMREC_MQTT_USERNAME).")
    password: Optional[SecretStr] = Field(None, description="Broker password (or STREAMREC_MQTT_PASSWORD); never logged.")

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        try:
            parts = urlsplit(value)
            parts.port
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("use mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        if parts.username or parts.password:
            raise ValueError("put the credentials in mqtt.username and mqtt.password, not in the URL")
        return value


class AppConfig(StrictModel):
    """The whole streamrec configuration."""

    cameras: list[CameraConfig] = Field(min_length=1, max_length=16, description="The cameras to read.")
    model: ModelConfig = ModelConfig()
    batching: BatchingConfig = BatchingConfig()
    publisher: PublisherConfig = PublisherConfig()
    overlay: OverlayConfig = OverlayConfig()
    events: EventsConfig = EventsConfig()
    skip: SkipConfig = SkipConfig()
    freshness: FreshnessConfig = FreshnessConfig()
    logging: LoggingConfig = LoggingConfig()
    http: HttpConfig = HttpConfig()
    mqtt: MqttConfig = MqttConfig()

    @field_validator("cameras")
    @classmethod
    def _unique_ids(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        ids = [camera.id for camera in cameras]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"camera ids must be unique; repeated: {', '.join(duplicates)}")
        return cameras

    @model_validator(mode="after")
    def _mqtt_reads_an_open_publisher(self) -> "AppConfig":
        if self.mqtt.broker is not None and self.publisher.curve:
            raise ValueError("mqtt.broker with publisher.curve_secret_key: the in-process bridge cannot read an "
                             "encrypted publisher; run `streamrec bridge --server-key … --client-key …` instead")
        return self
