"""ipc:// endpoints: a socket file in a directory only the service can write, never taking over a live one."""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Optional

from stream.wire.errors import PublishError

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660
"""Group members (POS users in the service's group) may connect; the directory decides who reaches the file."""
PROBE_TIMEOUT_S = 1.0


def ipc_path(endpoint: str) -> Optional[Path]:
    """The socket file of an `ipc://` endpoint (None for other transports and the abstract `ipc://@name`)."""
    if not endpoint.startswith("ipc://") or endpoint.startswith("ipc://@"):
        return None
    return Path(endpoint[len("ipc://"):])


def prepare_ipc_bind(endpoint: str) -> None:
    """Refuse an unsafe directory or a socket another process still serves; remove a stale socket file."""
    path = ipc_path(endpoint)
    if path is None:
        return
    _check_directory(path.parent.resolve())
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise PublishError(f"cannot bind publisher to {endpoint}: {path} exists and is not a socket; remove it or choose another path")
    if _answers(path):
        raise PublishError(f"cannot bind publisher to {endpoint}: another process is listening on {path}; "
                           "is another streamrec running? stop it or choose another path")
    log.info("replacing stale socket %s (nothing listens on it)", path)
    path.unlink()


def share_with_group(endpoint: str) -> None:
    """After bind: let the socket's group connect (the service's umask would keep it to the owner)."""
    path = ipc_path(endpoint)
    if path is not None:
        os.chmod(path, SOCKET_MODE)


def _check_directory(directory: Path) -> None:
    try:
        info = directory.stat()
    except FileNotFoundError:
        raise PublishError(f"directory {directory} of the ipc:// endpoint does not exist; create it "
                           "(the systemd unit provides /run/streamrec)") from None
    writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable_by_others and not info.st_mode & stat.S_ISVTX:
        raise PublishError(f"directory {directory} of the ipc:// endpoint is writable by other users, who could replace "
                           f"the socket; use a directory only streamrec can write (e.g. /run/streamrec) or chmod go-w {directory}")
    if writable_by_others:
        log.warning("ipc socket directory %s is shared (sticky, like /tmp): other users can take the name while streamrec "
                    "is down; prefer /run/streamrec", directory)


def _answers(path: Path) -> bool:
    """True when something accepts connections on the socket file (a live owner), False when it is stale."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(PROBE_TIMEOUT_S)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise PublishError(f"cannot check the existing socket {path}: {exc.strerror}; remove it if no streamrec runs") from None
    finally:
        probe.close()
    return True
