"""What the benchmark ran on: CPU, cores, relevant flags, library versions."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from inference.threads import ThreadPlan, available_cpus
from inference.training.hardware import cpu_flags

INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
PACKAGES = ("torch", "torchvision", "torchao", "openvino", "nncf", "onnxruntime", "opencv-python", "numpy", "pyzmq")


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(plan: ThreadPlan) -> dict[str, Any]:
    """The `machine` object of the benchmark JSON."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "cores": available_cpus(),
        "threads": plan.threads,
        "lanes": plan.lanes,
        "threads_per_lane": plan.threads_per_lane,
        "flags": [flag for flag in INTERESTING_FLAGS if flag in flags],
        "python": platform.python_version(),
        "torch": versions.get("torch", "?"),
        "versions": versions,
    }
