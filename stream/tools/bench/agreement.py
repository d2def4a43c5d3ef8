"""Top-1 agreement of each fast path with torch fp32, on trained models and real-looking frames."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from inference.backends.auto import top1
from inference.backends.choice import Choice
from inference.model import Classifier, TorchClassifier
from inference.preprocess import BatchPreprocessor


def agreement_rows(reference: TorchClassifier, model_name: str, runners: Sequence[tuple[Choice, Callable[[], Classifier]]],
                   frames: Sequence[np.ndarray], batch: int = 8) -> list[dict[str, Any]]:
    """For each (choice, build) the share of `frames` whose top-1 equals torch fp32's."""
    inputs = BatchPreprocessor(reference.input_spec, len(frames))(list(frames)).clone()
    expected = top1(reference, inputs, batch)
    rows = []
    for choice, build in runners:
        predicted = top1(build(), inputs, batch)
        rows.append({"backend": choice.backend, "precision": choice.precision, "model": model_name, "frames": len(frames),
                     "top1_agreement": round(float((predicted == expected).float().mean()), 4)})
    return rows
