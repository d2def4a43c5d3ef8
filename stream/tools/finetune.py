"""`streamrec finetune`: train a product classifier on an image folder and write a model bundle."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Optional, TextIO

import torch

from inference.bundle import Bundle, model_id_for, save_bundle
from inference.errors import ModelError, WeightsNotFound
from inference.feature_stats import (
    FeatureStats,
    batched_features,
    compute_feature_stats,
)
from inference.imagenet import load_state_dict
from inference.preprocess import BatchPreprocessor, InputSpec
from inference.training.dataset import ImageDataset, load_image_folder, stratified_split
from inference.training.hardware import has_fast_bf16
from inference.training.trainer import (
    EpochReport,
    TrainConfig,
    TrainingOutcome,
    finetune,
)
from inference.weights import resolve_resnet18_weights
from stream.tools.finetune_verdict import FEW_VAL_PER_CLASS as MIN_VAL_PER_CLASS
from stream.tools.finetune_verdict import verdict
from stream.tools.progress import ProgressBar

log = logging.getLogger(__name__)

STREAMREC_VERSION = "0.1.0"
PRETRAINED_INPUT, SCRATCH_INPUT = 224, 160
STATS_BATCH = 64


@dataclass(frozen=True)
class FinetuneRequest:
    """What `streamrec finetune` was asked to do."""

    data_dir: Path
    out: Path
    train: TrainConfig
    val_dir: Optional[Path] = None
    val_fraction: float = 0.15
    weights: Optional[Path] = None
    name: Optional[str] = None
    learning_rate: Optional[float] = None
    """None: 1e-3 when starting from ImageNet weights, 2e-3 from scratch."""
    input_size: Optional[int] = None
    """None: 224 px from ImageNet weights, 160 px from scratch (measured: as accurate on small sets, twice as fast)."""


class TrainingProgress:
    """Draws one progress bar per epoch and prints what each epoch achieved."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._bar: Optional[ProgressBar] = None
        self._phase = ""

    def __call__(self, phase: str, done: int, total: int, figures: dict[str, float]) -> None:
        if phase != self._phase:
            self._phase, self._bar = phase, ProgressBar(phase, total, self._stream)
        assert self._bar is not None
        self._bar.update(done, **figures)

    def epoch_done(self, report: EpochReport) -> None:
        """Close the epoch's bar with its validation figures."""
        if self._bar is not None:
            self._bar.close(f"val loss {report.val_loss:.3f}  val acc {report.val_accuracy:.3f}")
            self._bar, self._phase = None, ""


def base_weights(explicit: Optional[Path]) -> tuple[Optional[dict[str, torch.Tensor]], str]:
    """The ImageNet ResNet-18 body to start from, or (None, why) when training must start from scratch."""
    try:
        path = resolve_resnet18_weights(explicit, allow_download=False)
    except WeightsNotFound as exc:
        if explicit is not None:
            raise
        log.warning("ImageNet weights not on this machine (%s). Training from scratch: expect lower accuracy "
                    "and more epochs; `streamrec model fetch` gets the weights.", str(exc).split(". ")[0])
        return None, "none (trained from scratch)"
    return load_state_dict(path), f"resnet18-imagenet1k-v1 ({path.name})"


def train_bundle(train: ImageDataset, val: ImageDataset, config: TrainConfig, name: str,
                 base: tuple[Optional[dict[str, torch.Tensor]], str], dataset: dict[str, Any],
                 progress: Optional[TrainingProgress] = None, feature_stats: bool = True) -> Bundle:
    """Train, then package the best epoch with its labels, metrics, provenance and (unless told not to) its feature
    statistics."""
    state, base_description = base
    log.info("training %d classes on %d images (%d for validation), input %d px, bf16 %s, from %s",
             len(train.classes), len(train), len(val), config.input.crop, "on" if has_fast_bf16() else "off",
             base_description)
    started = time.monotonic()
    outcome = finetune(train, val, config, state, progress, progress.epoch_done if progress else None)
    seconds = time.monotonic() - started
    bundle = Bundle(
        state_dict=outcome.state_dict,
        labels=train.classes,
        input=config.input,
        model_id=model_id_for(name, outcome.state_dict),
        metrics={**_metrics(outcome), "train_seconds": round(seconds, 1)},
        provenance={
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "streamrec": STREAMREC_VERSION,
            "torch": str(torch.__version__),
            "base_weights": base_description,
            "frozen_layers": list(outcome.frozen),
            "dataset": dataset,
            "train_config": {k: v for k, v in asdict(config).items() if k not in ("input", "augment")},
        },
    )
    return replace(bundle, features=trained_feature_stats(bundle, train, val)) if feature_stats else bundle


def trained_feature_stats(bundle: Bundle, train: ImageDataset, val: ImageDataset) -> FeatureStats:
    """The new bundle's feature mean, prototypes per label and unknown calibration (one pass over the pictures)."""
    classifier = bundle.to_classifier()
    features_of = batched_features(classifier, BatchPreprocessor(bundle.input, STATS_BATCH))
    return compute_feature_stats(features_of, train.images, train.labels, val.images, val.labels, len(bundle.labels))


def _metrics(outcome: TrainingOutcome) -> dict[str, Any]:
    best = outcome.best
    return {
        "val_top1": round(best.val_accuracy, 4),
        "val_loss": round(best.val_loss, 4),
        "best_epoch": best.epoch,
        "epochs_run": len(outcome.history),
        "stopped_early": outcome.stopped_early,
        "per_class_top1": {k: round(v, 4) for k, v in outcome.per_class_accuracy.items()},
        "confusion": outcome.confusion,
        "history": [{k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(r).items()} for r in outcome.history],
    }


def dataset_summary(root: Path, train: ImageDataset, val: ImageDataset, val_root: Optional[Path]) -> dict[str, Any]:
    """Provenance of the data: where it came from and how much of each class."""
    return {
        "root": str(root),
        "val_root": str(val_root) if val_root else None,
        "classes": len(train.classes),
        "train_images": len(train),
        "val_images": len(val),
        "skipped_images": train.skipped + val.skipped,
        "train_per_class": train.per_class(),
    }


def run_finetune(request: FinetuneRequest, progress: Optional[TrainingProgress] = None) -> Bundle:
    """Load the data, train, and write the bundle; DatasetError and ModelError carry the user's fix."""
    base = base_weights(request.weights)
    crop = request.input_size or (PRETRAINED_INPUT if base[0] is not None else SCRATCH_INPUT)
    config = dataclasses.replace(request.train, input=InputSpec.for_crop(crop),
                                 learning_rate=request.learning_rate or (1e-3 if base[0] is not None else 2e-3))
    size = config.input.resize
    bar = ProgressBar("loading images", 1)
    data = load_image_folder(request.data_dir, size, progress=bar.update_total)
    bar.close(f"{len(data)} images, {len(data.classes)} classes" + (f", {data.skipped} unreadable skipped" if data.skipped else ""))
    if request.val_dir:
        train, val = data, load_image_folder(request.val_dir, size)
        if val.classes != train.classes:
            raise ModelError(f"{request.val_dir}: validation classes {list(val.classes)} differ from training classes {list(train.classes)}")
    else:
        train, val = stratified_split(data, request.val_fraction, request.train.seed, MIN_VAL_PER_CLASS)
    name = request.name or request.out.stem
    summary = dataset_summary(request.data_dir, train, val, request.val_dir)
    bundle = train_bundle(train, val, config, name, base, summary, progress or TrainingProgress())
    save_bundle(bundle, request.out)
    log.info("wrote %s: validation top-1 %.1f%% (epoch %d)", request.out, bundle.metrics["val_top1"] * 100,
             bundle.metrics["best_epoch"])
    report_verdict(bundle, train, base[0] is not None)
    return bundle


def report_verdict(bundle: Bundle, train: ImageDataset, pretrained: bool) -> None:
    """Log the per-class verdict; a poor model is a warning that says why and what to do."""
    judged = verdict(bundle.labels, bundle.metrics["confusion"], train.per_class(), pretrained)
    for line in judged.lines:
        (log.warning if judged.poor and line.lstrip().startswith(("warning", "-")) else log.info)("%s", line)
