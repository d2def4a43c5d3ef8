"""The fine-tuning loop: ResNet-18 with a new head, early layers frozen, best epoch kept, early stopping."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
from torchvision.models import resnet18

from inference.preprocess import InputSpec, normalize_crops
from inference.training.augment import AugmentConfig, augment
from inference.training.dataset import ImageDataset
from inference.training.early_stop import EarlyStop
from inference.training.hardware import has_fast_bf16

log = logging.getLogger(__name__)

FREEZE_ORDER = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
FREEZE_CHOICES = ("auto", "none", "stem", "layer1", "layer2", "layer3")
SMALL_SET_IMAGES = 1000
"""Training sets up to this size get the small-set treatment of batch norm (BatchNormPolicy)."""
MIN_STEPS_PER_EPOCH = 20
"""A small set goes over its pictures several times per epoch, so validation runs every 20 steps or more."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one fine-tuning run."""

    input: InputSpec = InputSpec.for_crop(112)
    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    freeze: str = "auto"
    """Layers kept fixed: none, stem, layer1…layer3; auto = layer1 with ImageNet weights, none from scratch."""
    patience: int = 3
    min_steps: int = 200
    """Optimizer steps a small set trains for at least (more epochs when it has few images); no early stop before."""
    max_seconds: Optional[float] = None
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class EpochReport:
    """What one epoch achieved."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass
class TrainingOutcome:
    """The best model and how training went."""

    state_dict: dict[str, torch.Tensor]
    best: EpochReport
    history: list[EpochReport]
    frozen: tuple[str, ...]
    stopped_early: bool
    per_class_accuracy: dict[str, float]
    confusion: list[list[int]] = field(default_factory=list)
    """Validation pictures of class i (row) predicted as class j (column), for the best epoch."""


ProgressCallback = Callable[[str, int, int, dict[str, float]], None]
"""progress(phase, done, total, figures): batches done in a phase such as 'epoch 3'."""
EpochCallback = Callable[[EpochReport], None]


def frozen_layers(freeze: str, pretrained: bool) -> tuple[str, ...]:
    """The ResNet-18 parts a freeze setting keeps fixed."""
    if freeze == "auto":
        freeze = "layer1" if pretrained else "none"
    if freeze == "none":
        return ()
    last = "bn1" if freeze == "stem" else freeze
    return FREEZE_ORDER[: FREEZE_ORDER.index(last) + 1]


def build_model(num_classes: int, base_state: Optional[dict[str, torch.Tensor]]) -> torch.nn.Module:
    """ResNet-18 with a `num_classes` head; body weights from `base_state` when given (its head is dropped)."""
    model = resnet18(weights=None, num_classes=num_classes)
    if base_state is not None:
        body = {k: v for k, v in base_state.items() if not k.startswith("fc.")}
        missing, unexpected = model.load_state_dict(body, strict=False)
        assert set(missing) == {"fc.weight", "fc.bias"} and not unexpected, (missing, unexpected)
    return model


def finetune(train: ImageDataset, val: ImageDataset, config: TrainConfig,
             base_state: Optional[dict[str, torch.Tensor]] = None,
             progress: Optional[ProgressCallback] = None,
             on_epoch: Optional[EpochCallback] = None) -> TrainingOutcome:
    """Train and return the epoch with the best validation accuracy."""
    torch.manual_seed(config.seed)
    model = build_model(len(train.classes), base_state)
    frozen = frozen_layers(config.freeze, base_state is not None)
    for name in frozen:
        for parameter in getattr(model, name).parameters():
            parameter.requires_grad_(False)
    bf16 = has_fast_bf16()
    model = model.to(memory_format=torch.channels_last)
    passes = max(1, math.ceil(MIN_STEPS_PER_EPOCH / math.ceil(len(train) / config.batch_size)))
    steps_per_epoch = passes * math.ceil(len(train) / config.batch_size)
    needed = math.ceil(config.min_steps / steps_per_epoch)
    if needed > config.epochs or passes > 1:
        log.info("small set: %d epochs of %d steps (%d passes over the pictures each) instead of %d epochs, so training "
                 "takes at least %d steps", max(needed, config.epochs), steps_per_epoch, passes, config.epochs,
                 config.min_steps)
        config = dataclasses.replace(config, epochs=max(needed, config.epochs))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.learning_rate, total_steps=config.epochs * steps_per_epoch,
                                                   pct_start=0.25)
    norms = BatchNormPolicy.for_set(len(train), base_state is not None)
    loop = _Loop(model, frozen, optimizer, schedule, config, bf16, progress, on_epoch, norms, needed, passes)
    return loop.run(train, val)


@dataclass(frozen=True)
class BatchNormPolicy:
    """How batch-norm statistics are kept on a small set, so evaluation sees what training did: frozen at their
    ImageNet values, or (from scratch) recomputed over the training pictures before every validation. A few dozen
    steps of running averages are far from the real statistics: validation loss blew up to 49 without this."""

    frozen: bool = False
    recompute: bool = False

    @staticmethod
    def for_set(images: int, pretrained: bool) -> "BatchNormPolicy":
        if images > SMALL_SET_IMAGES:
            return BatchNormPolicy()
        return BatchNormPolicy(frozen=True) if pretrained else BatchNormPolicy(recompute=True)


class _Loop:
    """Epochs of training and validation with early stopping and a time budget."""

    def __init__(self, model, frozen, optimizer, schedule, config: TrainConfig, bf16: bool, progress, on_epoch,
                 norms: BatchNormPolicy = BatchNormPolicy(), min_epochs: int = 1, passes: int = 1) -> None:
        self.model, self.frozen, self.optimizer, self.schedule = model, frozen, optimizer, schedule
        self.norms, self.min_epochs, self.passes = norms, min_epochs, passes
        self.config, self.bf16, self.progress, self.on_epoch = config, bf16, progress, on_epoch
        self.rng = np.random.default_rng(config.seed)
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def run(self, train: ImageDataset, val: ImageDataset) -> TrainingOutcome:
        started = time.monotonic()
        history: list[EpochReport] = []
        best: Optional[EpochReport] = None
        best_state, best_per_class, best_key, stopped_early = None, {}, (0.0, 0.0), False
        stop = EarlyStop(self.config.patience, self.min_epochs)
        for epoch in range(1, self.config.epochs + 1):
            epoch_start = time.monotonic()
            train_loss, train_acc = self._train_epoch(train, epoch)
            if self.norms.recompute:
                recompute_batch_norm(self.model, train, self.config.input, self.bf16)
            val_loss, val_acc, per_class = self.evaluate(val, epoch)
            report = EpochReport(epoch, train_loss, train_acc, val_loss, val_acc, time.monotonic() - epoch_start)
            history.append(report)
            if self.on_epoch:
                self.on_epoch(report)
            should_stop = stop.update(val_loss, val_acc)
            if best is None or (val_acc, -stop.smoothed_loss) >= best_key:
                best, best_key, best_per_class = report, (val_acc, -stop.smoothed_loss), per_class
                best_state = copy.deepcopy(self.model.state_dict())
            if should_stop and epoch < self.config.epochs:
                log.info("neither validation accuracy nor the smoothed validation loss improved for %d epochs: "
                         "stopping early", stop.stale_epochs)
                stopped_early = True
                break
            if self.config.max_seconds and time.monotonic() - started > self.config.max_seconds:
                log.info("time budget of %.0f s used: stopping after epoch %d", self.config.max_seconds, epoch)
                stopped_early = True
                break
        assert best is not None and best_state is not None
        state = {k: v.contiguous() for k, v in best_state.items()}
        self.model.load_state_dict(best_state)
        logits, labels = predict_dataset(self.model, val, self.config.input, self.bf16)
        confusion = np.zeros((len(val.classes), len(val.classes)), np.int64)
        np.add.at(confusion, (labels.numpy(), logits.argmax(1).numpy()), 1)
        return TrainingOutcome(state, best, history, self.frozen, stopped_early, best_per_class, confusion.tolist())

    def _train_epoch(self, data: ImageDataset, epoch: int) -> tuple[float, float]:
        self.model.train()
        for name in self.frozen:
            getattr(self.model, name).eval()  # frozen BatchNorm keeps its statistics
        if self.norms.frozen:
            for module in self.model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.eval()
        order = np.concatenate([self.rng.permutation(len(data)) for _ in range(self.passes)])
        batches = [order[i:i + self.config.batch_size] for i in range(0, len(order), self.config.batch_size)]
        loss_sum, correct, seen = 0.0, 0, 0
        for number, indices in enumerate(batches, 1):
            crops = np.stack([augment(data.images[i], self.config.input.crop, self.rng, self.config.augment) for i in indices])
            inputs = normalize_crops(crops, self.config.input).contiguous(memory_format=torch.channels_last)
            targets = torch.from_numpy(data.labels[indices])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.model(inputs)
                loss = self.loss_fn(logits.float(), targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            loss_sum += float(loss.detach()) * len(indices)
            correct += int((logits.argmax(1) == targets).sum())
            seen += len(indices)
            if self.progress:
                self.progress(f"epoch {epoch}", number, len(batches), {"loss": loss_sum / seen, "acc": correct / seen})
        return loss_sum / seen, correct / seen

    def evaluate(self, data: ImageDataset, epoch: int = 0) -> tuple[float, float, dict[str, float]]:
        """Loss, top-1 accuracy and per-class accuracy on centre crops (exactly what inference sees)."""
        predictions = predict_dataset(self.model, data, self.config.input, self.bf16)
        logits, labels = predictions
        loss = float(torch.nn.functional.cross_entropy(logits, labels))
        hits = (logits.argmax(1) == labels).numpy()
        per_class = {
            name: float(hits[data.labels == index].mean()) if np.any(data.labels == index) else float("nan")
            for index, name in enumerate(data.classes)
        }
        return loss, float(hits.mean()), per_class


def recompute_batch_norm(model: torch.nn.Module, data: ImageDataset, spec: InputSpec, bf16: bool,
                         batch_size: int = 32) -> None:
    """Set every batch-norm layer's running statistics to their average over the training pictures' centre crops
    (what inference sees), the weights untouched."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # a cumulative average over the whole pass
    model.train()
    margin = int(round((data.images.shape[1] - spec.crop) / 2.0))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(data), batch_size):
            crops = data.images[start:start + batch_size, margin:margin + spec.crop, margin:margin + spec.crop]
            model(normalize_crops(crops, spec).contiguous(memory_format=torch.channels_last))
    for module, momentum in zip(norms, momenta):
        module.momentum = momentum
    model.eval()


def predict_dataset(model: torch.nn.Module, data: ImageDataset, spec: InputSpec, bf16: bool = False,
                    batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits for every image's centre crop, and the labels."""
    model.eval()
    outputs = []
    margin = int(round((data.images.shape[1] - spec.crop) / 2.0))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(data), batch_size):
            crops = data.images[start:start + batch_size, margin:margin + spec.crop, margin:margin + spec.crop]
            inputs = normalize_crops(crops, spec).contiguous(memory_format=torch.channels_last)
            outputs.append(model(inputs).float())
    return torch.cat(outputs), torch.from_numpy(data.labels)
