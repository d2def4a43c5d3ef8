"""Torch on the CPU in channels-last memory format: fp32, or bfloat16 autocast, optionally torch.compile'd."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Optional

import torch

from inference.artifacts import first_line, quarantine
from inference.features import split
from inference.model import TorchClassifier
from inference.threads import TorchThreadPin

log = logging.getLogger(__name__)

COMPILE_OPTIONS = {"freezing": True}
"""Inductor folds the weights into the compiled graph (and prepacks them for oneDNN)."""


class TorchRunner:
    """Runs a copy of a classifier's module with the chosen precision; same labels, input and model id."""

    def __init__(self, source: TorchClassifier, precision: str = "fp32", compiled: bool = False) -> None:
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"TorchRunner runs fp32 or bf16, not {precision}")
        module = copy.deepcopy(source.features_module() or source.module).eval().to(memory_format=torch.channels_last)
        self._eager = module
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
        return self.predict_with_features(batch)[0]

    def predict_with_features(self, batch: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(logits, features), float32, from one forward pass (features None for a model without them)."""
        return split(self._run(batch), len(self.labels))

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        self._threads.apply()
        batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16):
            try:
                return self._module(batch).float()
            except Exception as exc:
                if self._module is self._eager:
                    raise
                self._give_up_compiling(exc)
                return self._eager(batch).float()

    def _give_up_compiling(self, exc: Exception) -> None:
        """torch.compile failed (e.g. inductor found a damaged kernel in its cache): run eagerly from now on, and
        move inductor's cache aside so that the next start compiles afresh."""
        log.warning("compiling the model failed (%s); it runs eagerly (uncompiled) until the next start",
                    first_line(exc))
        self._module = self._eager
        self.description = self.description.replace(" compiled", "")
        cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        if cache:
            quarantine(Path(cache), first_line(exc))
