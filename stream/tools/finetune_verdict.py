"""The end of `streamrec finetune`: how good the model is per class, what it confuses, and, when it is poor, why
and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

GOOD_TOP1 = 0.9
"""Below this validation top-1 (or any class below GOOD_CLASS) the model is called poor."""
GOOD_CLASS = 0.8
FEW_VAL_PER_CLASS = 5
FEW_TRAIN_PER_CLASS = 30


@dataclass(frozen=True)
class Verdict:
    """Lines to print, and whether the model is poor (a warning, still exit 0)."""

    lines: tuple[str, ...]
    poor: bool


def verdict(classes: Sequence[str], confusion: Sequence[Sequence[int]], train_per_class: dict[str, int],
            pretrained: bool) -> Verdict:
    """Per-class validation accuracy, the worst confusions, and the advice that fits."""
    totals = [sum(row) for row in confusion]
    correct = [row[i] for i, row in enumerate(confusion)]
    top1 = sum(correct) / max(1, sum(totals))
    lines = [f"validation: {top1:.1%} top-1 on {sum(totals)} pictures"]
    lines += [f"  {name}: {hit / total:.0%} ({hit}/{total})" if total else f"  {name}: no validation pictures"
              for name, hit, total in zip(classes, correct, totals)]
    lines += _confusions(classes, confusion)
    weak = [name for name, hit, total in zip(classes, correct, totals) if total and hit / total < GOOD_CLASS]
    poor = top1 < GOOD_TOP1 or bool(weak)
    if poor:
        lines += _advice(top1, weak, min(totals), min(train_per_class.values()), pretrained)
    return Verdict(tuple(lines), poor)


def _confusions(classes: Sequence[str], confusion: Sequence[Sequence[int]], most: int = 3) -> list[str]:
    mistakes = sorted(((count, i, j) for i, row in enumerate(confusion) for j, count in enumerate(row)
                       if i != j and count), reverse=True)[:most]
    if not mistakes:
        return ["  no confusions"]
    return ["  most confused: " + "; ".join(f"{classes[i]} taken for {classes[j]} {count}×" for count, i, j in mistakes)]


def _advice(top1: float, weak: list[str], val_per_class: int, train_per_class: int, pretrained: bool) -> list[str]:
    lines = [f"warning: this model is poor ({top1:.0%} top-1" + (f"; weak: {', '.join(weak)}" if weak else "") + ")."]
    if train_per_class < FEW_TRAIN_PER_CLASS:
        lines.append(f"  - only {train_per_class} training photos in the smallest class: take at least 40 per product, "
                     "from several angles, distances and lights")
    if not pretrained:
        lines.append("  - trained from scratch: the ImageNet weights learn far more from few photos "
                     "(`streamrec model fetch` on a machine with internet, then --weights FILE)")
    if val_per_class < FEW_VAL_PER_CLASS:
        lines.append(f"  - only {val_per_class} validation photos in a class: these figures are noisy; add photos or "
                     "pass --val DIR")
    lines.append("  - check the weak classes' folders for wrong or unreadable pictures")
    lines.append("  - to add a few products to a model that already works (this one retrained or an earlier bundle), "
                 "enroll them instead of training: `streamrec enroll --model BUNDLE --label NAME --images DIR` "
                 "takes seconds and needs 20-50 photos per product")
    return lines
