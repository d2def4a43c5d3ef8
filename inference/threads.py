"""How many CPUs this process may really use (affinity and cgroup quota), and torch's thread setup."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cgroup_cpu_limit(cpu_max: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs allowed by the cgroup v2 quota (e.g. systemd's CPUQuota=), or None when unlimited."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may use: its affinity mask, capped by the cgroup quota (at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(cpu_max)
    if limit is not None:
        count = min(count, max(1, math.floor(limit)))
    return max(1, count)


def configure_torch_threads(requested: int) -> int:
    """Set torch's intra-op threads (0 = all available CPUs) and return the number used."""
    threads = requested or available_cpus()
    torch.set_num_threads(threads)
    log.info("torch uses %d thread(s)", threads)
    return threads
