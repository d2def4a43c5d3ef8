"""How many CPUs this process may really use (affinity and cgroup quota), and torch's thread setup."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """CPUs allowed by the tightest quota on this process's cgroup or any parent (e.g. systemd's CPUQuota=);
    None when unlimited. Reads cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` on hosts without v2's cpu controller."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    memberships = {}
    for line in lines:
        _hierarchy, _sep, rest = line.partition(":")
        controllers, _sep, path = rest.partition(":")
        memberships[controllers] = path
    if (root / "cgroup.controllers").is_file():
        return _tightest(_own_and_parents(root, memberships.get("", "/")), _v2_limit)
    for controllers, path in memberships.items():
        if "cpu" in controllers.split(","):
            mount = root / controllers if (root / controllers).is_dir() else root / "cpu"
            return _tightest(_own_and_parents(mount, path), _v1_limit)
    return None


def _own_and_parents(mount: Path, path: str) -> list[Path]:
    """The cgroup directory of `path` under `mount` and every ancestor up to the mount (which may be a namespace root)."""
    parts = [part for part in path.split("/") if part and part not in (".", "..")]
    return [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _tightest(directories: list[Path], read_limit) -> float | None:
    limits = [limit for limit in map(read_limit, directories) if limit is not None]
    return min(limits) if limits else None


def _v2_limit(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1_limit(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def available_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> int:
    """The CPUs this process may use: its affinity mask, capped by the cgroup quota (at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        count = min(count, max(1, math.floor(limit)))
    return max(1, count)


AUTO_MAX_LANES = 4
"""`lanes = 0` runs one model lane per thread, up to this many."""


@dataclass(frozen=True)
class ThreadPlan:
    """How the model uses the CPUs: `lanes` model calls at once, each on `threads_per_lane` threads.

    Two lanes of one thread each beat one lane of two threads on this 2-core machine (torch int8, batch 8, one
    process): 217-231 against 193-203 img/s raw, and with a preprocessing thread beside them 203-209 against
    176-177. A multi-threaded call waits at every layer for its slowest thread, so when capture or preprocessing
    takes a core for a moment every thread of the call waits; one-thread lanes lose only the time taken."""

    lanes: int
    threads_per_lane: int

    @property
    def threads(self) -> int:
        """All model threads."""
        return self.lanes * self.threads_per_lane

    def describe(self) -> str:
        return f"{self.lanes} model lane(s) of {self.threads_per_lane} thread(s)"


def plan_threads(threads: int = 0, lanes: int = 0, cpus: Optional[int] = None) -> ThreadPlan:
    """The plan for `threads` model threads (0 = the CPUs this process may use) in `lanes` lanes (0 = one per
    thread, at most AUTO_MAX_LANES; never more lanes than threads); the threads are split evenly."""
    total = threads or (cpus if cpus is not None else available_cpus())
    count = min(lanes or AUTO_MAX_LANES, total)
    return ThreadPlan(count, max(1, total // count))


def configure_torch_threads(plan: ThreadPlan) -> ThreadPlan:
    """Give torch `plan.threads_per_lane` intra-op threads (every lane's calls use that many) and return the plan.

    Call before building a model: compiled code keeps the thread count it was compiled with."""
    torch.set_num_threads(plan.threads_per_lane)
    log.info("the model runs in %s", plan.describe())
    return plan


class TorchThreadPin:
    """The torch thread count that compiled code was traced with, given to every thread that calls it.

    Dynamo guards compiled code on the calling thread's torch thread count. A new thread starts with
    the count last set with `torch.set_num_threads`, or with the OpenMP/MKL default (physical cores on
    some machines) when nobody set one; on a mismatch dynamo compiles again, without int8 freezing,
    in the middle of a stream."""

    def __init__(self) -> None:
        self.threads = torch.get_num_threads()

    def apply(self) -> None:
        """Give the calling thread the pinned count (a cheap check once it has it)."""
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
