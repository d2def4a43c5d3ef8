"""What the CPU offers for training and inference speed-ups (bfloat16)."""

from __future__ import annotations

from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU feature flags the kernel reports (empty when unknown)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_fast_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX-512 BF16 or AMX), so bf16 beats fp32."""
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if native is not None and native():
        return True
    return any(flag in cpu_flags() for flag in BF16_FLAGS)
