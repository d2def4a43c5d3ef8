"""Build (and, for `auto`, measure) the faster paths in a child process at low priority while the service already
serves; then load the winner here, ready-made, and hand it over."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
from dataclasses import dataclass
from typing import Callable, Optional

from inference.artifacts import first_line, partial_prefix, sweep_partials
from inference.backends.auto import Trial
from inference.backends.choice import Choice
from inference.backends.select import BuildJob, decide_now
from inference.model import Classifier

log = logging.getLogger(__name__)

CHILD_NICE = 10
"""The child's niceness: the serving process keeps about nine tenths of a busy CPU."""
POLL_S = 0.2
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class BuildOutcome:
    """What the child found: the path to run and how much faster than the path serving now (None: not measured)."""

    choice: Choice
    speedup: Optional[float]


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when the service dies (even by SIGKILL), so no build outlives it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _child_main(job: BuildJob, serving: Choice, results: "multiprocessing.SimpleQueue") -> None:
    _die_with_parent()
    try:
        os.nice(CHILD_NICE)
    except OSError:  # a sandbox without setpriority: the build runs at the service's priority
        pass
    job.factory.models_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{partial_prefix()}inductor-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=job.factory.models_dir) as scratch:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = scratch  # a killed build leaves no half-written kernel anyone reuses
        try:
            results.put(("ok", build(job, serving)))
        except BaseException as exc:  # reported to the parent, which keeps serving
            results.put(("error", first_line(exc)))


def build(job: BuildJob, serving: Choice) -> BuildOutcome:
    """In the child: build the target, or measure every candidate and remember the decision; every artifact is
    cached (atomically) so the parent loads it ready-made."""
    from inference.backends.auto import images_per_second

    factory = job.factory.build()
    if job.decide:
        chosen, trials = decide_now(factory, job.backend, job.min_agreement)
        return BuildOutcome(chosen.choice, _speedup(trials, chosen, serving))
    runner = factory(job.target)
    batch = factory.tensor_for_speed()
    target_speed = images_per_second(runner, batch, lanes=factory.plan.lanes)
    serving_speed = images_per_second(factory(serving), batch, lanes=factory.plan.lanes)
    return BuildOutcome(job.target, target_speed / serving_speed if serving_speed else None)


def _speedup(trials: list[Trial], chosen: Trial, serving: Choice) -> Optional[float]:
    now = next((t for t in trials if t.choice == serving and t.img_per_s), None)
    return chosen.img_per_s / now.img_per_s if now is not None and chosen.img_per_s else None


class BackgroundBuild(threading.Thread):
    """Runs one BuildJob in a child process, then loads the result with `load` and gives it to `ready`.

    One at a time per service (the owner cancels the previous one before starting another); `cancel()` kills the
    child at once, so a stop never waits for a build."""

    def __init__(self, job: BuildJob, serving: Choice, load: Callable[[Choice], Classifier],
                 ready: Callable[[Classifier, BuildOutcome], None], failed: Callable[[str], None]) -> None:
        super().__init__(name="model-build", daemon=True)
        self._job, self._serving, self._load, self._ready, self._failed = job, serving, load, ready, failed
        self._cancelled = threading.Event()
        self._process: Optional[multiprocessing.process.BaseProcess] = None
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            outcome = self._run_child()
            if outcome is None or self._cancelled.is_set():
                return
            if outcome.choice == self._serving:
                self._ready(None, outcome)
                return
            runner = self._load(outcome.choice)
            if not self._cancelled.is_set():
                self._ready(runner, outcome)
        except Exception as exc:
            log.exception("building the faster model path failed; the current one keeps serving")
            self._failed(first_line(exc))

    def _run_child(self) -> Optional[BuildOutcome]:
        context = multiprocessing.get_context("spawn")
        results = context.SimpleQueue()
        with self._lock:
            if self._cancelled.is_set():
                return None
            self._process = context.Process(target=_child_main, args=(self._job, self._serving, results),
                                            name="streamrec-model-build")
            self._process.start()
        while self._process.is_alive() and not self._cancelled.is_set():
            self._process.join(POLL_S)
        if self._cancelled.is_set():
            return None
        if results.empty():
            self._failed(f"the build process ended without a result (exit code {self._process.exitcode})")
            return None
        status, value = results.get()
        if status != "ok":
            self._failed(value)
            return None
        return value

    def cancel(self, timeout_s: float = 1.0) -> None:
        """Kill the child (if running) and wait briefly for this thread."""
        with self._lock:
            self._cancelled.set()
            process = self._process
        if process is not None and process.is_alive():
            process.kill()
            process.join(timeout_s)
            sweep_partials(self._job.factory.models_dir, killed=(process.pid,))  # what it was writing
        if self.ident is not None:
            self.join(timeout_s)
