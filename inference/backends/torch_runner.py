"""Torch on the CPU in channels-last memory format: fp32, or bfloat16 autocast, optionally torch.compile'd."""

from __future__ import annotations

import copy

import torch

from inference.model import TorchClassifier
from inference.threads import TorchThreadPin

COMPILE_OPTIONS = {"freezing": True}
"""Inductor folds the weights into the compiled graph (and prepacks them for oneDNN)."""


class TorchRunner:
    """Runs a copy of a classifier's module with the chosen precision; same labels, input and model id."""

    def __init__(self, source: TorchClassifier, precision: str = "fp32", compiled: bool = False) -> None:
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"TorchRunner runs fp32 or bf16, not {precision}")
        module = copy.deepcopy(source.module).eval().to(memory_format=torch.channels_last)
        self._module = torch.compile(module, dynamic=True, options=COMPILE_OPTIONS) if compiled else module
        self._threads = TorchThreadPin()
        self._bf16 = precision == "bf16"
        self.labels = source.labels
        self.model_id = source.model_id
        self.input_spec = source.input_spec
        self.backend, self.precision = "torch", precision
        self.description = f"torch {precision}{' compiled' if compiled else ''} channels-last"

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits (float32) for the batch."""
        self._threads.apply()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16):
            return self._module(batch.contiguous(memory_format=torch.channels_last)).float()
