"""CurveZMQ for the publisher: key files, the authenticator that enforces the client allow-list, and client set-up."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from config.schema import PublisherConfig
from stream.wire.errors import CurveKeyError

log = logging.getLogger(__name__)

ZAP_DOMAIN = "streamrec"


def generate_keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """Write NAME.key (public, to share) and NAME.key_secret (private, mode 0600) into `directory`."""
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise CurveKeyError(f"{path} already exists; clients trust the existing key, so remove it first if you mean to replace it")
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    public_file, secret_file = zmq.auth.create_certificates(directory, name)
    os.chmod(secret_file, 0o600)
    os.chmod(public_file, 0o644)
    return Path(public_file), Path(secret_file)


def load_secret_key(path: Path) -> tuple[bytes, bytes]:
    """(public, secret) from a NAME.key_secret file; refuses a public-only file and warns on loose permissions."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise CurveKeyError(f"cannot read CurveZMQ key {path}: {exc}; create one with `streamrec keys generate DIR`") from None
    if secret is None:
        raise CurveKeyError(f"{path} holds no secret key; give the NAME.key_secret file, not NAME.key")
    if path.stat().st_mode & stat.S_IRWXO:
        log.warning("secret key %s is readable by every user; run: chmod 640 %s", path, path)
    return public, secret


def load_public_key(path: Path) -> bytes:
    """The public key of a NAME.key (or NAME.key_secret) file."""
    try:
        return zmq.auth.load_certificate(path)[0]
    except (OSError, ValueError) as exc:
        raise CurveKeyError(f"cannot read CurveZMQ key {path}: {exc}") from None


@dataclass(frozen=True)
class CurveServer:
    """The publisher's key pair and the directory of client public keys it admits."""

    public_key: bytes
    secret_key: bytes
    clients: Path

    @classmethod
    def from_config(cls, config: PublisherConfig) -> Optional["CurveServer"]:
        """The CURVE settings of a publisher config, or None when it publishes in clear."""
        if config.curve_secret_key is None or config.curve_clients is None:
            return None
        public, secret = load_secret_key(config.curve_secret_key)
        return cls(public, secret, config.curve_clients)

    def start_authenticator(self, context: zmq.Context) -> ThreadAuthenticator:
        """Start the ZAP handler that admits only the allow-listed client keys (one per context)."""
        try:
            allowed = zmq.auth.load_certificates(self.clients)
        except (OSError, ValueError) as exc:
            raise CurveKeyError(f"cannot read client keys in {self.clients}: {exc}") from None
        if not allowed:
            log.warning("no client keys (*.key) in %s: no POS can subscribe until one is added and streamrec restarted",
                        self.clients)
        authenticator = ThreadAuthenticator(context, log=logging.getLogger(f"{__name__}.auth"))
        authenticator.start()
        authenticator.configure_curve(domain=ZAP_DOMAIN, location=str(self.clients))
        log.info("CurveZMQ on: %d allowed client key(s) from %s", len(allowed), self.clients)
        return authenticator

    def secure(self, socket: zmq.Socket) -> None:
        """Make `socket` a CURVE server that asks the authenticator about every client (before bind)."""
        socket.curve_secretkey = self.secret_key
        socket.curve_publickey = self.public_key
        socket.zap_domain = ZAP_DOMAIN.encode()
        socket.curve_server = True


def secure_client(socket: zmq.Socket, server_public_key: Path, client_secret_key: Path) -> None:
    """Make `socket` a CURVE client of the publisher whose public key file is given (before connect)."""
    public, secret = load_secret_key(client_secret_key)
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    socket.curve_serverkey = load_public_key(server_public_key)
