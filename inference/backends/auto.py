"""`precision = "auto"`: measure every available path on calibration frames and keep the fastest that agrees with fp32."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from inference.artifacts import first_line, quarantine, staged
from inference.backends.choice import Choice, why_unavailable
from inference.model import Classifier, takes_rgb_uint8
from inference.preprocess import rgb_uint8_crops
from inference.speed import timed_calls

log = logging.getLogger(__name__)

SPEED_SECONDS = 1.0


@dataclass(frozen=True)
class Trial:
    """How one candidate did: top-1 agreement with fp32 and images per second, or why it was not tried."""

    backend: str
    precision: str
    agreement: Optional[float] = None
    img_per_s: Optional[float] = None
    note: str = ""

    @property
    def choice(self) -> Choice:
        return Choice(self.backend, self.precision)


def top1(classifier: Classifier, frames: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Top-1 indices for `frames`, in batches."""
    return torch.cat([classifier.predict(frames[i:i + batch_size]).argmax(1) for i in range(0, len(frames), batch_size)])


def images_per_second(classifier: Classifier, batch: torch.Tensor, seconds: float = SPEED_SECONDS, lanes: int = 1) -> float:
    """Throughput on repeated calls with `batch` from `lanes` threads at once (after one warm-up call), given as
    uint8 crops to a classifier that takes them, as the stream gives it."""
    if takes_rgb_uint8(classifier) and batch.dtype != torch.uint8:
        batch = rgb_uint8_crops(batch, classifier.input_spec)
    return timed_calls(classifier, batch, seconds, lanes, warmup_calls=1).img_per_s


def run_trials(candidates: Sequence[Choice], build: Callable[[Choice], Classifier], reference: Classifier,
               frames: torch.Tensor, batch_size: int, lanes: int = 1) -> list[Trial]:
    """Build and measure each candidate; unavailable or failing ones are recorded with the reason."""
    expected = top1(reference, frames, batch_size)
    batch = frames[:batch_size]
    trials = []
    for choice in candidates:
        reason = why_unavailable(choice)
        if reason:
            trials.append(Trial(choice.backend, choice.precision, note=reason))
            continue
        log.info("auto: measuring %s", choice)
        try:
            runner = build(choice)
            agreement = float((top1(runner, frames, batch_size) == expected).float().mean())
            trials.append(Trial(choice.backend, choice.precision, agreement, images_per_second(runner, batch, lanes=lanes)))
        except Exception as exc:  # a path that fails here must not stop the service: it is just not chosen
            log.warning("auto: %s failed: %s", choice, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            trials.append(Trial(choice.backend, choice.precision, note=f"failed: {type(exc).__name__}"))
    return trials


def pick(trials: Sequence[Trial], min_agreement: float) -> Trial:
    """The fastest trial whose agreement reaches `min_agreement`; torch fp32 when none does."""
    qualified = [t for t in trials if t.agreement is not None and t.agreement >= min_agreement and t.img_per_s]
    if not qualified:
        return Trial("torch", "fp32", note="no measured path qualified")
    return max(qualified, key=lambda t: t.img_per_s or 0.0)


def explain(trials: Sequence[Trial], chosen: Trial, min_agreement: float) -> str:
    """One log line: what was picked and why, with every candidate's figures."""
    parts = []
    for t in trials:
        if t.img_per_s is not None:
            parts.append(f"{t.backend} {t.precision}: {t.img_per_s:.0f} img/s, top-1 agreement {t.agreement:.1%}")
        else:
            parts.append(f"{t.backend} {t.precision}: {t.note}")
    return (f"auto picked {chosen.backend} {chosen.precision} (fastest with top-1 agreement ≥ {min_agreement:.0%} "
            f"with fp32): " + "; ".join(parts))


def load_decision(path: Path) -> Optional[Trial]:
    """A decision cached by an earlier start, or None (a damaged one is moved to quarantine)."""
    try:
        data = json.loads(path.read_text())
        return Trial(**data["chosen"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        quarantine(path, first_line(exc))
        return None


def save_decision(path: Path, chosen: Trial, trials: Sequence[Trial]) -> None:
    """Remember the decision (and the figures behind it) for the next start (atomically)."""
    with staged(path) as partial:
        partial.write_text(json.dumps({"chosen": asdict(chosen), "trials": [asdict(t) for t in trials]}, indent=2))
