"""Files streamrec builds and caches (int8 packages, OpenVINO models, `auto` decisions): written under a temporary
name and renamed into place only once they were checked, and moved aside into `quarantine/` when they fail to load,
so that no cache content, however damaged, can stop a start."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
PARTIAL_PREFIX = "partial-"


def partial_prefix() -> str:
    """The name prefix of files this process is still writing: partial-PID-."""
    return f"{PARTIAL_PREFIX}{os.getpid()}-"


@contextmanager
def staged(target: Path, directory: bool = False) -> Iterator[Path]:
    """A temporary file (or folder) beside `target`, with the same suffix, that replaces `target` when the block
    ends without an exception (check it inside the block); removed otherwise. Readers see the old `target` or the
    new one, never half of it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = partial_prefix()
    if directory:
        partial = Path(tempfile.mkdtemp(prefix=prefix, suffix=target.suffix, dir=target.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)
        os.close(handle)
        partial = Path(name)
    try:
        yield partial
        _fsync(partial)
        if directory and target.exists():
            _remove(target)
        os.replace(partial, target)
    finally:
        _remove(partial)


SEAL_SUFFIX = ".sha256"


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in ([path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())):
        digest.update(file.relative_to(path.parent).as_posix().encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def seal_file(path: Path) -> Path:
    """Where the seal of `path` is kept (beside it)."""
    return path.with_name(path.name + SEAL_SUFFIX)


def seal(path: Path) -> None:
    """Record the digest of a checked artifact (file or folder) beside it, so a later start can tell it is still
    exactly what was checked before handing it to a native loader (which may crash on a damaged file)."""
    with staged(seal_file(path)) as partial:
        partial.write_text(_digest(path) + "\n")


def unsealed_reason(path: Path) -> Optional[str]:
    """None when `path` is exactly what was sealed, else why not (no seal, or the content changed)."""
    try:
        expected = seal_file(path).read_text().strip()
    except OSError:
        return "no seal: its build did not finish"
    return None if _digest(path) == expected else "its content changed since it was checked (damaged)"


def _fsync(path: Path) -> None:
    """Flush a file, or every file of a folder, to the disk before it is renamed into place (a power cut)."""
    for file in ([path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]):
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def quarantine(path: Path, reason: str, folder: Optional[Path] = None) -> Optional[Path]:
    """Move a cached file or folder that failed to load into `folder` (default: `quarantine/` beside it), with
    one log line naming it; returns where it went (None when it could not be moved: then it is deleted)."""
    path = Path(path)
    if not path.exists():
        return None
    folder = folder or path.parent / QUARANTINE
    destination = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{path.name}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(path, destination)
        _remove(seal_file(path))
    except OSError as exc:
        log.warning("cached %s is unusable (%s) and could not be moved aside (%s); deleting it", path, reason, exc)
        _remove(path)
        return None
    log.warning("cached %s is unusable (%s); moved it to %s, it is rebuilt", path, reason, destination)
    return destination


def first_line(exc: BaseException) -> str:
    """An exception as one short line for a log message."""
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


LEFTOVER_AGE_S = 3600.0
"""A partial-* file this old is a killed build's even if its writer's process id was reused since."""


def sweep_partials(folder: Path, older_than_s: float = LEFTOVER_AGE_S, killed: tuple[int, ...] = ()) -> None:
    """Delete what killed builds left behind in `folder` and below (files and folders partial-PID-*, whose process
    is gone, or is one of `killed`, a process the caller killed that may not have been reaped yet)."""
    if not folder.is_dir():
        return
    for leftover in sorted(folder.rglob(f"{PARTIAL_PREFIX}*")):
        if not leftover.exists():  # inside a folder deleted just before
            continue
        try:
            if not _writer_alive(leftover.name, killed) or time.time() - leftover.stat().st_mtime >= older_than_s:
                _remove(leftover)
        except OSError:
            pass


def _writer_alive(name: str, killed: tuple[int, ...] = ()) -> bool:
    pid = name[len(PARTIAL_PREFIX):].split("-", 1)[0]
    return pid.isdigit() and int(pid) not in killed and process_alive(int(pid))


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:][:1] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, ValueError):  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process
            return True
        return True
