"""TLS and credentials of a served model's client: the files `model.remote_ca`, `remote_cert` and `remote_key`, and
the headers every call carries (`model.remote_token`, else $STREAMREC_REMOTE_TOKEN, and `model.remote_headers`).
Header values never reach a log, an error message or a repr."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from config.redact import MASK
from config.schema import ModelConfig
from inference.errors import ModelError

TOKEN_ENV = "STREAMREC_REMOTE_TOKEN"
TRITON_GRPC_PREFIX = "triton-grpc-protocol-"
"""Triton's own `--grpc-restricted-protocol=…:KEY=VALUE` checks the gRPC header TRITON_GRPC_PREFIX + KEY."""
TLS_WORDS = ("ssl", "tls", "certificate", "handshake")
REFUSAL_WORDS = ("unauthenticated", "unauthorized", "permission", "restricted", "forbidden")


@dataclass(frozen=True)
class RemoteAuth:
    """TLS files (no CA: the system's trust store; no cert: no client certificate) and the headers of every call."""

    ca: Optional[Path] = None
    cert: Optional[Path] = None
    key: Optional[Path] = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_config(cls, model: ModelConfig, environ: Mapping[str, str] = os.environ) -> "RemoteAuth":
        """The config's TLS files and headers; the token is model.remote_token, else the environment's."""
        headers = {name.lower(): value.get_secret_value() for name, value in model.remote_headers.items()}
        token = model.remote_token.get_secret_value() if model.remote_token is not None else environ.get(TOKEN_ENV, "")
        token = token.strip()
        if any(ord(char) < 32 or ord(char) == 127 for char in token):
            raise ModelError(f"{TOKEN_ENV} holds control characters (a stray newline?); set it to the token alone")
        if token:
            headers["authorization"] = f"Bearer {token}"
        secrets = sorted({*headers.values(), token} - {""}, key=len, reverse=True)
        return cls(model.remote_ca, model.remote_cert, model.remote_key, tuple(headers.items()), tuple(secrets))

    def headers_for(self, protocol: str) -> tuple[tuple[str, str], ...]:
        """The headers to send; over gRPC each also under Triton's prefix, so a Triton server's own restriction
        (`--grpc-restricted-protocol=…:authorization=Bearer TOKEN`) and a gateway in front of it both see it."""
        if protocol != "grpc":
            return self.headers
        prefixed = [(TRITON_GRPC_PREFIX + name, value) for name, value in self.headers
                    if not name.startswith(TRITON_GRPC_PREFIX)]
        return self.headers + tuple(prefixed)

    def scrub(self, text: str) -> str:
        """`text` with every header value and the token masked."""
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def grpc_options(self) -> dict[str, Any]:
        """Keyword arguments for a TLS tritonclient.grpc.InferenceServerClient (files checked first)."""
        self.check_files()
        return {"ssl": True, "root_certificates": _text(self.ca) or ssl.get_default_verify_paths().cafile,
                "private_key": _text(self.key), "certificate_chain": _text(self.cert)}

    def http_options(self) -> dict[str, Any]:
        """Keyword arguments for a TLS tritonclient.http.InferenceServerClient (files checked first)."""
        import gevent.ssl

        self.check_files()
        options = {"ca_certs": str(self.ca)} if self.ca is not None else {}
        if self.cert is not None:
            options.update(certfile=str(self.cert), keyfile=str(self.key))
        return {"ssl": True, "ssl_options": options, "ssl_context_factory": gevent.ssl.create_default_context}

    def check_files(self) -> None:
        """ModelError naming the key when a TLS file cannot be read or is not PEM."""
        try:
            context = ssl.create_default_context(cafile=_text(self.ca))
        except (OSError, ssl.SSLError) as exc:
            raise ModelError(f"model.remote_ca {self.ca}: not a readable PEM certificate bundle ({exc}); point it "
                             "at the CA that signed the server's certificate") from None
        if self.cert is None:
            return
        try:
            context.load_cert_chain(self.cert, self.key, password=lambda: b"")
        except (OSError, ssl.SSLError) as exc:
            raise ModelError(f"model.remote_cert {self.cert} with model.remote_key {self.key}: cannot load them "
                             f"({exc}); both must be readable PEM files that belong together, the key unencrypted") from None


class HeaderPlugin:
    """A tritonclient plugin: puts the headers into every request (health, metadata, config and inference)."""

    def __init__(self, headers: tuple[tuple[str, str], ...]) -> None:
        self._headers = dict(headers)

    def __call__(self, request: Any) -> None:
        request.headers.update(self._headers)

    def __repr__(self) -> str:
        return f"HeaderPlugin({', '.join(self._headers)})"


def refusal_hint(reason: str) -> Optional[str]:
    """What to check when a call failed on TLS or on credentials; None for other failures."""
    lowered = reason.lower()
    if any(word in lowered for word in TLS_WORDS):
        return ("the TLS connection failed: check model.remote_ca (the CA that signed the server's certificate), "
                "model.remote_cert/remote_key, and that the server speaks TLS on that port")
    if any(word in lowered for word in REFUSAL_WORDS):
        return "the server refused the call: check model.remote_token (or $STREAMREC_REMOTE_TOKEN) and model.remote_headers"
    return None


def _text(path: Optional[Path]) -> Optional[str]:
    return str(path) if path is not None else None
