"""Turn a loaded classifier into the configured backend and precision (or the one `auto` picks), with caches."""

from __future__ import annotations

import hashlib
import logging
import platform
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from config.schema import ModelConfig
from inference.backends.auto import explain, load_decision, pick, run_trials, save_decision
from inference.backends.choice import BackendUnavailable, Choice, candidates, require
from inference.model import Classifier, TorchClassifier
from inference.preprocess import BatchPreprocessor
from inference.threads import ThreadPlan
from inference.training.hardware import cpu_flags

log = logging.getLogger(__name__)

CALIBRATION_FRAMES = 64
RUNNERS_REVISION = 3
"""Raised when a runner gets faster or slower, so `auto` measures again (2: torch int8 runs real int8 kernels;
3: speed is measured with every model lane busy)."""
AGREEMENT_FRAMES = 128
FrameSource = Callable[[int, int], Sequence[np.ndarray]]
"""frames(count, seed) → BGR pictures like the cameras deliver (for calibration and agreement checks)."""


def weights_key(classifier: TorchClassifier) -> str:
    """A short hash of the weights and input: cached conversions belong to exactly this model."""
    digest = hashlib.sha256(repr(classifier.input_spec).encode())
    for name, tensor in sorted(classifier.module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _versions() -> str:
    parts = [f"torch-{torch.__version__}"]
    try:
        import openvino

        parts.append(f"ov-{openvino.__version__.split('-')[0]}")
    except ImportError:
        pass
    return "_".join(parts).replace("+", "-")


class RunnerFactory:
    """Builds any backend × precision for one classifier, sharing calibration frames and the on-disk cache."""

    def __init__(self, source: TorchClassifier, frames: FrameSource, cache_dir: Path, plan: ThreadPlan,
                 batch_size: int, compiled: bool = False) -> None:
        self.source, self._frames, self.plan, self._compiled = source, frames, plan, compiled
        self.cache_dir = cache_dir / weights_key(source) / _versions()
        self._batch_size = batch_size
        self._tensors: dict[int, torch.Tensor] = {}

    def tensor(self, count: int, seed: int) -> torch.Tensor:
        """`count` preprocessed frames (cached per seed)."""
        if seed not in self._tensors:
            images = list(self._frames(count, seed))
            preprocess = BatchPreprocessor(self.source.input_spec, len(images))
            self._tensors[seed] = preprocess(images).clone()
        return self._tensors[seed]

    def __call__(self, choice: Choice) -> Classifier:
        from inference.backends.torch_runner import TorchRunner

        if choice.backend == "openvino":
            from inference.backends.openvino_runner import OpenVinoRunner

            return OpenVinoRunner(self.source, choice.precision, self.tensor(CALIBRATION_FRAMES, 1), self.cache_dir / "openvino",
                                  self.plan)
        if choice.precision == "int8":
            from inference.backends.torch_int8 import Int8Runner

            return Int8Runner(self.source, self.tensor(CALIBRATION_FRAMES, 1), self.cache_dir / "torch-int8.pt2",
                              self._batch_size)
        return TorchRunner(self.source, choice.precision, self._compiled)

    def decision_file(self, backend: str, min_agreement: float) -> Path:
        """Where `auto` keeps its decision for this model, backend setting, batch size and CPU."""
        cpu = hashlib.sha256(" ".join(sorted(cpu_flags())).encode() + platform.processor().encode()).hexdigest()[:8]
        return self.cache_dir / f"auto-r{RUNNERS_REVISION}-{backend}-b{self._batch_size}-a{min_agreement}-l{self.plan.lanes}x{self.plan.threads_per_lane}-{cpu}.json"


def accelerate(classifier: Classifier, model: ModelConfig, batch_size: int, cache_dir: Path, plan: ThreadPlan,
               frames: FrameSource) -> Classifier:
    """The classifier the worker should run, per model.backend / model.precision / model.compile."""
    if not isinstance(classifier, TorchClassifier):
        if model.backend not in ("auto", "torch") or model.precision not in ("auto", "fp32"):
            raise BackendUnavailable("model.backend and model.precision apply to resnet18 and bundles; "
                                     "onnx:/torchscript: models run as they are (leave both on auto)")
        return classifier
    factory = RunnerFactory(classifier, frames, cache_dir, plan, batch_size, model.compile)
    if model.precision == "auto":
        choice = decide(factory, model.backend, batch_size, model.min_agreement)
    else:
        choice = Choice("torch" if model.backend == "auto" else model.backend, model.precision)
        require(choice)
    runner = factory(choice)
    log.info("model %s runs on %s", classifier.model_id, getattr(runner, "description", str(choice)))
    return runner


def decide(factory: RunnerFactory, backend: str, batch_size: int, min_agreement: float) -> Choice:
    """The cached auto decision, or measure every available candidate now and cache the result."""
    path = factory.decision_file(backend, min_agreement)
    cached = load_decision(path)
    if cached is not None:
        log.info("auto: using %s %s decided earlier (%s)", cached.backend, cached.precision, path)
        return cached.choice
    log.info("auto: measuring the available backends and precisions once (cached in %s)", path.parent)
    frames = factory.tensor(AGREEMENT_FRAMES, 2)
    trials = run_trials(candidates(backend), factory, factory.source, frames, batch_size, factory.plan.lanes)
    chosen = pick(trials, min_agreement)
    log.info(explain(trials, chosen, min_agreement))
    save_decision(path, chosen, trials)
    return chosen.choice


