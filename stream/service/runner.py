"""`streamrec run`: load the model, build the pipeline, run until stopped, and map the outcome to an exit code."""

from __future__ import annotations

import faulthandler
import logging
import sys
import threading
from typing import Optional, Sequence

import cv2

from capture.factory import SourceFactory
from config.paths import cache_root
from config.schema import AppConfig
from inference.backends.select import accelerate
from inference.loader import load_classifier
from inference.threads import configure_torch_threads, plan_threads
from stream.overlay.display import display_available
from stream.pipeline.app import Pipeline, RunOutcome
from stream.pipeline.worker import ResultSink
from stream.service import exit_codes
from stream.service.calibration import frame_source
from stream.service.notify import NotifierThread
from stream.service.signals import install_stop_handlers

log = logging.getLogger(__name__)


def wants_window(config: AppConfig) -> bool:
    """Show the overlay only when it is enabled and a display exists (saying so once when it does not)."""
    if not config.overlay.enabled:
        log.info("overlay disabled (headless)")
        return False
    if not display_available():
        log.info("no display (DISPLAY and WAYLAND_DISPLAY unset): running without the overlay window")
        return False
    return True


def run_pipeline(
    config: AppConfig,
    duration: Optional[float] = None,
    source_factory: Optional[SourceFactory] = None,
    extra_sinks: Sequence[ResultSink] = (),
) -> int:
    """Run the configured pipeline in this process; ModelError propagates (exit 78 at the CLI)."""
    stop = threading.Event()
    install_stop_handlers(stop)
    enable_stack_dumps()
    cv2.setNumThreads(1)  # the model's lanes get the cores; capture and preprocessing stay single-threaded
    plan = configure_torch_threads(plan_threads(config.model.threads, config.model.lanes))
    classifier = accelerate(load_classifier(config.model, plan.threads_per_lane), config.model, config.batching.max_batch,
                            cache_root() / "models", plan, frame_source(config.model.calibration_dir))
    pipeline = Pipeline(
        config, classifier, stop, source_factory=source_factory, show_window=wants_window(config), extra_sinks=extra_sinks
    )
    outcome = run_notified(pipeline, duration)
    log.info("run ended: %s", outcome.value)
    return exit_codes.RUNTIME_FAILURE if outcome is RunOutcome.WORKER_FAILED else exit_codes.OK


def run_notified(pipeline: Pipeline, duration: Optional[float] = None) -> RunOutcome:
    """Run the pipeline, telling systemd (when it started us) READY, STATUS, WATCHDOG and STOPPING."""
    notifier = NotifierThread.from_environ(pipeline.health.check, pipeline.statuses, pipeline.stop,
                                           model=lambda: pipeline.model.status().describe())
    try:
        pipeline.start()
        if notifier.enabled:
            notifier.start()
        return pipeline.wait(duration)
    finally:
        pipeline.shutdown()
        notifier.close()


def enable_stack_dumps() -> None:
    """On a fatal signal (systemd's watchdog sends SIGABRT) write every thread's stack to stderr, i.e. the journal."""
    try:
        faulthandler.enable(sys.stderr, all_threads=True)
    except (AttributeError, ValueError, OSError):  # stderr without a file descriptor (embedded, captured)
        log.debug("faulthandler not enabled: stderr has no file descriptor")
