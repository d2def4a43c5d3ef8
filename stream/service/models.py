"""The running service's model: serve what is ready now, swap in the faster path once a background build proves
it, and load a changed `[model]` on reload while the old model keeps serving."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Optional

from config.schema import ModelConfig
from inference.backends.background import BackgroundBuild, BuildOutcome
from inference.backends.choice import Choice
from inference.backends.select import FrameSource, StartPlan, plan_start
from inference.loader import load_classifier
from inference.model import Classifier, serving_path
from inference.threads import ThreadPlan
from stream.pipeline.model_slot import ModelSlot

log = logging.getLogger(__name__)


def start_plan(model: ModelConfig, plan: ThreadPlan, batch_size: int, cache_dir: Path,
               frames: Callable[[Optional[Path]], FrameSource]) -> StartPlan:
    """Load the configured model (ModelError when it is missing or invalid) and decide what serves first."""
    classifier = load_classifier(model, plan.threads_per_lane)
    return plan_start(classifier, model, batch_size, cache_dir, plan, frames(model.calibration_dir))


class ModelManager:
    """Puts models into the pipeline's slot; at most one background build runs at a time."""

    def __init__(self, slot: ModelSlot, plan: ThreadPlan, batch_size: int, cache_dir: Path,
                 frames: Callable[[Optional[Path]], FrameSource]) -> None:
        self.slot = slot
        self._plan, self._batch_size, self._cache_dir, self._frames = plan, batch_size, cache_dir, frames
        self._build: Optional[BackgroundBuild] = None
        self._lock = threading.Lock()
        self._closed = False

    def serve(self, start: StartPlan) -> None:
        """Serve `start.serving` from the next batch on, and start its background build, if it has one."""
        self._cancel_build()
        with self._lock:
            if self.slot.current is not None and self.slot.current is not start.serving:
                log.info("model %s now serves (was %s)", start.serving.model_id, self.slot.current.model_id)
            self.slot.swap(start.serving)
            if start.build is None or self._closed:
                self.slot.set_optimizing(False)
                return
            serving = Choice(*serving_path(start.serving))
            factory = start.factory
            self._build = BackgroundBuild(start.build, serving, lambda choice: factory(choice, build=False),
                                          self._ready_callback(start.serving), self._failed)
            self.slot.set_optimizing(True)
            self._build.start()

    def reload(self, model: ModelConfig) -> bool:
        """Load `model` while the current one keeps serving, then swap; refuse (and keep serving) when it cannot be
        loaded. Blocks while the new model loads (run it off the worker's threads)."""
        try:
            start = start_plan(model, self._plan, self._batch_size, self._cache_dir, self._frames)
        except Exception as exc:
            note = f"reload refused, the previous model keeps serving: {exc}"
            log.error("%s", note)
            self.slot.set_note(note)
            return False
        self.slot.set_note("")
        self.serve(start)
        return True

    def close(self) -> None:
        """Stop any background build (its child process is killed)."""
        with self._lock:
            self._closed = True
        self._cancel_build()
        self.slot.set_optimizing(False)

    def _cancel_build(self) -> None:
        """Kill the running build, if any (outside the lock: its thread may be waiting for it to hand over)."""
        with self._lock:
            build, self._build = self._build, None
        if build is not None:
            build.cancel()

    def _ready_callback(self, was: Classifier) -> Callable[[Optional[Classifier], BuildOutcome], None]:
        def ready(runner: Optional[Classifier], outcome: BuildOutcome) -> None:
            with self._lock:
                if self._closed or self.slot.current is not was:
                    return  # a reload replaced the model meanwhile
                if runner is not None:
                    self.slot.swap(runner)
                    faster = f", {outcome.speedup:.1f}× faster" if outcome.speedup else ""
                    backend, precision = serving_path(was)
                    log.info("model %s now runs on %s (was %s %s%s)", runner.model_id,
                             getattr(runner, "description", str(outcome.choice)), backend, precision, faster)
                else:
                    log.info("model %s: %s stays, no faster path agrees well enough", was.model_id, outcome.choice)
                self.slot.set_optimizing(False)

        return ready

    def _failed(self, reason: str) -> None:
        log.warning("the background build failed (%s); the model keeps running on the current path", reason)
        self.slot.set_note(f"background build failed: {reason}")
        self.slot.set_optimizing(False)
