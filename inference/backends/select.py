"""Turn a loaded classifier into the configured backend and precision (or the one `auto` picks), with caches."""

from __future__ import annotations

import hashlib
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from config.schema import ModelConfig
from inference.artifacts import first_line, sweep_partials
from inference.backends.auto import (
    Trial,
    explain,
    load_decision,
    pick,
    run_trials,
    save_decision,
)
from inference.backends.choice import (
    BackendUnavailable,
    Choice,
    NotCached,
    candidates,
    require,
)
from inference.features import FEATURES_REVISION
from inference.model import Classifier, TorchClassifier
from inference.preprocess import BatchPreprocessor
from inference.threads import ThreadPlan
from inference.training.hardware import cpu_flags

log = logging.getLogger(__name__)

CALIBRATION_FRAMES = 64
RUNNERS_REVISION = 4
"""Raised when a runner gets faster or slower, so `auto` measures again (2: torch int8 runs real int8 kernels;
3: speed is measured with every model lane busy; 4: torch int8 is an ahead-of-time compiled package)."""
AGREEMENT_FRAMES = 128
FrameSource = Callable[[int, int], Sequence[np.ndarray]]
"""frames(count, seed) → BGR pictures like the cameras deliver (for calibration and agreement checks)."""


def weights_key(classifier: TorchClassifier) -> str:
    """A short hash of the weights, input and output layout: cached conversions belong to exactly this model
    (and one made before its output held the features is never taken for one that has them)."""
    digest = hashlib.sha256(f"{classifier.input_spec!r} features-r{FEATURES_REVISION}".encode())
    for name, tensor in sorted(classifier.weights().items()):
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


def cpu_key() -> str:
    """A short hash of this CPU's instruction set: compiled code and measurements belong to one kind of CPU."""
    return hashlib.sha256(" ".join(sorted(cpu_flags())).encode() + platform.processor().encode()).hexdigest()[:8]


class RunnerFactory:
    """Builds any backend × precision for one classifier, sharing calibration frames and the on-disk cache.

    `isolate_builds`: build the torch int8 program in a child process (so its memory goes back to the system);
    off inside the background build's own child."""

    def __init__(self, source: TorchClassifier, frames: Optional[FrameSource], cache_dir: Path, plan: ThreadPlan,
                 batch_size: int, compiled: bool = False, isolate_builds: bool = True) -> None:
        self.source, self._frames, self.plan, self._compiled = source, frames, plan, compiled
        self.models_dir = cache_dir
        self.cache_dir = cache_dir / weights_key(source) / _versions()
        self._batch_size = self.batch_size = batch_size
        self._isolate_builds = isolate_builds
        self._tensors: dict[int, torch.Tensor] = {}
        sweep_partials(cache_dir)

    def tensor(self, count: int, seed: int) -> torch.Tensor:
        """`count` preprocessed frames (cached per seed)."""
        if seed not in self._tensors:
            if self._frames is None:
                raise ValueError(f"no frames for seed {seed}: this factory was given its tensors ready-made")
            images = list(self._frames(count, seed))
            preprocess = BatchPreprocessor(self.source.input_spec, len(images))
            self._tensors[seed] = preprocess(images).clone()
        return self._tensors[seed]

    def tensor_for_speed(self) -> torch.Tensor:
        """One batch of frames for speed measurements."""
        return self.tensor(AGREEMENT_FRAMES, 2)[:self._batch_size]

    def for_child(self) -> "RunnerFactorySpec":
        """What a child process needs to build the same runners (the frames preprocessed here)."""
        tensors = {seed: self.tensor(count, seed) for count, seed in ((CALIBRATION_FRAMES, 1), (AGREEMENT_FRAMES, 2))}
        return RunnerFactorySpec(self.source, tensors, self.models_dir, self.plan, self._batch_size, self._compiled)

    def __call__(self, choice: Choice, build: bool = True) -> Classifier:
        """The runner for `choice`, its artifacts built (and cached) now when they are not cached yet; with
        `build` False, NotCached instead."""
        from inference.backends.torch_runner import TorchRunner

        calibration = lambda: self.tensor(CALIBRATION_FRAMES, 1)  # noqa: E731  (only needed to build)
        if choice.backend == "openvino":
            from inference.backends.openvino_runner import OpenVinoRunner

            return OpenVinoRunner(self.source, choice.precision, calibration, self.cache_dir / "openvino", self.plan,
                                  build)
        if choice.precision == "int8":
            from inference.backends.torch_int8 import Int8Runner

            return Int8Runner(self.source, calibration, self.int8_package(), self.plan, self._isolate_builds, build)
        return TorchRunner(self.source, choice.precision, self._compiled)

    def int8_package(self) -> Path:
        """Where the torch int8 package for this model, CPU and lane thread count is kept."""
        return self.cache_dir / f"int8-t{self.plan.threads_per_lane}-{cpu_key()}.pt2"

    def load_ready(self, choice: Choice) -> Optional[Classifier]:
        """The runner for `choice` when its artifacts are cached and load (it starts in seconds), else None.
        Damaged artifacts are moved to quarantine on the way."""
        try:
            return self(choice, build=False)
        except NotCached:
            return None
        except BackendUnavailable:
            raise
        except Exception as exc:  # a cache that loaded but does not run: the start goes on without it
            log.warning("cached %s does not run (%s); starting on another path", choice, first_line(exc))
            return None

    def quick(self) -> Classifier:
        """The path that is ready at once on any machine: torch fp32, eager."""
        from inference.backends.torch_runner import TorchRunner

        return TorchRunner(self.source, "fp32")

    def decision_file(self, backend: str, min_agreement: float) -> Path:
        """Where `auto` keeps its decision for this model, backend setting, batch size and CPU."""
        return self.cache_dir / f"auto-r{RUNNERS_REVISION}-{backend}-b{self._batch_size}-a{min_agreement}-l{self.plan.lanes}x{self.plan.threads_per_lane}-{cpu_key()}.json"


@dataclass(frozen=True)
class RunnerFactorySpec:
    """A RunnerFactory's ingredients, sent to the background build's child process."""

    source: TorchClassifier
    tensors: dict[int, torch.Tensor]
    models_dir: Path
    plan: ThreadPlan
    batch_size: int
    compiled: bool

    def build(self) -> RunnerFactory:
        factory = RunnerFactory(self.source, None, self.models_dir, self.plan, self.batch_size, self.compiled,
                                isolate_builds=False)
        factory._tensors.update(self.tensors)
        return factory


@dataclass(frozen=True)
class BuildJob:
    """What the child builds: `target` (a decided or configured path), or with `decide` every candidate of
    `backend`, measured, the fastest that agrees picked and remembered."""

    factory: RunnerFactorySpec
    target: Optional[Choice]
    decide: bool
    backend: str
    min_agreement: float


@dataclass(frozen=True)
class StartPlan:
    """What a start serves now, and what it builds in the background (None: nothing)."""

    serving: Classifier
    build: Optional[BuildJob] = None
    factory: Optional[RunnerFactory] = None


def plan_start(classifier: Classifier, model: ModelConfig, batch_size: int, cache_dir: Path, plan: ThreadPlan,
               frames: FrameSource) -> StartPlan:
    """Serve first: the configured (or decided) path when it is cached and loads, else torch fp32 at once with the
    build of the better path left to a background process (BackgroundBuild)."""
    if not isinstance(classifier, TorchClassifier):
        return StartPlan(accelerate(classifier, model, batch_size, cache_dir, plan, frames))
    factory = RunnerFactory(classifier, frames, cache_dir, plan, batch_size, model.compile)
    target = _configured_or_decided(factory, model)
    ready = factory.load_ready(target) if target is not None else None
    if ready is not None:
        log.info("model %s runs on %s", classifier.model_id, getattr(ready, "description", str(target)))
        return StartPlan(ready)
    quick = factory.quick()
    what = f"building {target}" if target is not None else "measuring the available backends and precisions"
    log.info("model %s starts on %s; %s in the background (cached for later starts)", classifier.model_id,
             quick.description, what)
    job = BuildJob(factory.for_child(), target, target is None, model.backend, model.min_agreement)
    return StartPlan(quick, job, factory)


def _configured_or_decided(factory: RunnerFactory, model: ModelConfig) -> Optional[Choice]:
    if model.precision != "auto":
        choice = Choice("torch" if model.backend == "auto" else model.backend, model.precision)
        require(choice)
        return choice
    cached = load_decision(factory.decision_file(model.backend, model.min_agreement))
    if cached is not None:
        log.info("auto: using %s %s decided earlier", cached.backend, cached.precision)
    return cached.choice if cached is not None else None


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
    return decide_now(factory, backend, min_agreement)[0].choice


def decide_now(factory: RunnerFactory, backend: str, min_agreement: float) -> tuple[Trial, list[Trial]]:
    """Measure every available candidate, remember the fastest that agrees, and return it with every trial."""
    path = factory.decision_file(backend, min_agreement)
    log.info("auto: measuring the available backends and precisions once (cached in %s)", path.parent)
    frames = factory.tensor(AGREEMENT_FRAMES, 2)
    trials = run_trials(candidates(backend), factory, factory.source, frames, factory.batch_size, factory.plan.lanes)
    chosen = pick(trials, min_agreement)
    log.info(explain(trials, chosen, min_agreement))
    save_decision(path, chosen, trials)
    return chosen, trials


