"""Which backend and precision to run, and the error when one is not available here."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from inference.errors import ModelError
from inference.training.hardware import has_fast_bf16

BACKENDS = ("torch", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")


class BackendUnavailable(ModelError):
    """A backend or precision that this machine cannot run; the message says why and what to do."""


class NotCached(Exception):
    """A path asked for ready-made whose artifacts are not cached (or were damaged and moved to quarantine)."""


@dataclass(frozen=True)
class Choice:
    """One way to run the model."""

    backend: str
    precision: str

    def __str__(self) -> str:
        return f"{self.backend} {self.precision}"


def openvino_installed() -> bool:
    """True when the optional OpenVINO runtime can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def why_unavailable(choice: Choice) -> str | None:
    """None when `choice` can run here, else the reason and the fix."""
    if choice.backend == "openvino":
        if not openvino_installed():
            return "OpenVINO is not installed: pip install 'streamrec[openvino]'"
        if choice.precision == "int8" and not _importable("nncf"):
            return "OpenVINO int8 needs NNCF for calibration: pip install 'streamrec[openvino]'"
        return None
    if choice.precision == "bf16" and not has_fast_bf16():
        return "this CPU has no native bfloat16 (AVX-512 BF16 or AMX); use fp32, int8 or auto"
    if choice.precision == "int8":
        if not _importable("torchao"):
            return "torch int8 needs torchao: pip install 'streamrec[int8]'"
        if shutil.which("c++") is None and shutil.which("g++") is None:
            return "torch int8 compiles kernels with a C++ compiler and none is installed (apt-get install g++); or use openvino"
    return None


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def candidates(backend: str) -> list[Choice]:
    """Every backend × precision `auto` may consider for a configured backend (`auto` = all)."""
    backends = BACKENDS if backend == "auto" else (backend,)
    return [Choice(b, p) for b in backends for p in PRECISIONS]


def require(choice: Choice) -> None:
    """Raise BackendUnavailable when `choice` cannot run here."""
    reason = why_unavailable(choice)
    if reason:
        raise BackendUnavailable(f"model.backend = {choice.backend!r}, model.precision = {choice.precision!r}: {reason}")
