"""Softmax and top-k: from a batch of logits to ranked (label, index, score) predictions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class Prediction:
    """One ranked label with its softmax probability."""

    label: str
    index: int
    score: float
    source: str = "head"
    """"head" (the trained classifier) or "gallery" (an enrolled product)."""


def top_k(logits: torch.Tensor, labels: Sequence[str], k: int) -> list[tuple[Prediction, ...]]:
    """For each row of `logits` (N, C), the k best predictions, best first."""
    probabilities = torch.softmax(logits.float(), dim=1)
    scores, indices = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
    return [
        tuple(Prediction(labels[i], i, s) for i, s in zip(row_indices, row_scores))
        for row_indices, row_scores in zip(indices.tolist(), scores.tolist())
    ]
