"""What this process holds right now: memory, threads, file descriptors and sockets (Linux /proc)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ResourceSample:
    """One reading of the process's resources."""

    t_s: float
    """Seconds since the soak started."""
    rss_mib: float
    threads: int
    """Native threads (Python's, torch's, OpenCV's and ZeroMQ's)."""
    python_threads: int
    fds: int
    sockets: int


def sample_resources(t_s: float, proc: Path = Path("/proc/self")) -> ResourceSample:
    """Read RSS, thread and descriptor counts of this process."""
    rss_kib = 0
    for line in (proc / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    fds, sockets = 0, 0
    for entry in os.scandir(proc / "fd"):
        fds += 1
        try:
            sockets += os.readlink(entry.path).startswith("socket:")
        except OSError:  # closed between listing and reading
            pass
    return ResourceSample(
        t_s=round(t_s, 1), rss_mib=round(rss_kib / 1024, 1), threads=len(os.listdir(proc / "task")),
        python_threads=threading.active_count(), fds=fds, sockets=sockets,
    )

