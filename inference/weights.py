"""Find, fetch and verify the official ResNet-18 ImageNet weights (explicit path → hub cache → download)."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
from pathlib import Path
from typing import Optional

import torch

from inference.errors import FetchError, WeightsNotFound

log = logging.getLogger(__name__)

RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
RESNET18_FILE = "resnet18-f37072fd.pth"
RESNET18_HASH_PREFIX = "f37072fd"
"""torchvision's check: the file name carries the first 8 hex digits of the file's SHA-256."""


def hub_checkpoint_dir() -> Path:
    """Where torch keeps downloaded weights: $TORCH_HOME/hub/checkpoints (default ~/.cache/torch)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_weights_message(expected: Path, problem: str = "ResNet-18 ImageNet weights not found") -> str:
    """What a user without weights reads: the exact file expected and how to get it."""
    return (
        f"{problem}: expected {expected}. "
        f"On a machine with internet run `streamrec model fetch --dest DIR` and copy DIR/{RESNET18_FILE} "
        f"to {expected.parent}/ on this machine (or set model.weights = \"/path/{RESNET18_FILE}\"), "
        "or set model.allow_download = true where the kiosk may reach download.pytorch.org."
    )


def resolve_resnet18_weights(explicit: Optional[Path], allow_download: bool) -> Path:
    """Return the weights file to load, downloading only when allowed; raise WeightsNotFound otherwise."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsNotFound(missing_weights_message(path, "model.weights names a missing file"))
        return path
    cached = hub_checkpoint_dir() / RESNET18_FILE
    if cached.is_file():
        return cached
    if allow_download:
        log.info("weights not in %s; downloading %s", cached.parent, RESNET18_URL)
        try:
            return fetch_weights(cached.parent)
        except FetchError as exc:
            raise WeightsNotFound(f"{exc}. {missing_weights_message(cached)}") from None
    raise WeightsNotFound(missing_weights_message(cached))


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(path: Path, hash_prefix: str = RESNET18_HASH_PREFIX) -> bool:
    """True when the file's SHA-256 starts with the expected prefix."""
    return sha256_of(path).startswith(hash_prefix)


def fetch_weights(
    dest_dir: Path, url: str = RESNET18_URL, hash_prefix: str = RESNET18_HASH_PREFIX, progress: bool = True
) -> Path:
    """Download the weights into dest_dir, verify the checksum, and move them in place atomically."""
    dest_dir = Path(dest_dir).expanduser()
    dest = dest_dir / RESNET18_FILE
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create {dest_dir}: {exc.strerror}") from None
    handle, partial = tempfile.mkstemp(prefix=".partial-", dir=dest_dir)
    os.close(handle)
    try:
        torch.hub.download_url_to_file(url, partial, hash_prefix=None, progress=progress)
        actual = sha256_of(Path(partial))
        if not actual.startswith(hash_prefix):
            raise FetchError(f"checksum mismatch for {url}: sha256 {actual[:16]}… does not start with {hash_prefix}")
        os.replace(partial, dest)
    except (urllib.error.URLError, OSError, ConnectionError) as exc:
        raise FetchError(f"cannot download {url}: {getattr(exc, 'reason', exc)} (is this machine offline?)") from None
    finally:
        Path(partial).unlink(missing_ok=True)
    return dest
