"""`streamrec run`: load the model, build the pipeline, run until stopped, and map the outcome to an exit code."""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Callable, MutableMapping, Optional, Sequence

import cv2

from capture.factory import SourceFactory
from config.paths import cache_root
from config.schema import AppConfig, ModelConfig
from inference.backends.select import StartPlan
from inference.remote import ServerUnreachable, is_remote_spec
from inference.threads import ThreadPlan, configure_torch_threads, plan_threads
from stream.overlay.display import display_available
from stream.pipeline.app import Pipeline, RunOutcome
from stream.pipeline.model_slot import ModelSlot
from stream.pipeline.worker import ResultSink
from stream.service import exit_codes
from stream.service.calibration import frame_source
from stream.service.gallery_watch import gallery_watcher
from stream.service.models import ModelManager, start_plan
from stream.service.notify import NotifierThread
from stream.service.reload import ReloadThread
from stream.service.remote_link import RemoteLink
from stream.service.signals import install_reload_handler, install_stop_handlers
from stream.wire.bridge import BridgeThread

log = logging.getLogger(__name__)

THREAD_JOIN_S = 1.0


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
    reread: Optional[Callable[[], AppConfig]] = None,
) -> int:
    """Run the configured pipeline in this process; ModelError propagates (exit 78 at the CLI). `reread` reads the
    configuration again on reload (SIGHUP, POST /api/reload); without it a reload re-applies `config`."""
    stop, reload_requested = threading.Event(), threading.Event()
    install_stop_handlers(stop)
    install_reload_handler(reload_requested)  # now: SIGHUP's default action would end the process
    enable_stack_dumps()
    cv2.setNumThreads(1)  # the model's lanes get the cores; capture and preprocessing stay single-threaded
    keep_inductor_cache_in(cache_root())
    plan = configure_torch_threads(plan_threads(config.model.threads, config.model.lanes))
    models_dir = cache_root() / "models"
    start = start_or_wait_for_server(config.model, plan, config.batching.max_batch, models_dir)
    pipeline = Pipeline(
        config, start.serving if start else None, stop, source_factory=source_factory,
        show_window=wants_window(config), extra_sinks=extra_sinks, reload_requested=reload_requested,
    )
    models = ModelManager(pipeline.model, plan, config.batching.max_batch, models_dir, frame_source)
    reloader = ReloadThread(config, reread or (lambda: config), models, pipeline.reload_requested, stop)
    link = remote_link(config.model, start, pipeline.model, stop, plan, config.batching.max_batch, models_dir)
    gallery = gallery_watcher(config.model, pipeline.model, stop, config.events.ignore_labels,
                              config.events.min_score)
    bridge: Optional[BridgeThread] = None

    def started() -> None:
        nonlocal bridge
        if start is not None:
            models.serve(start)
        if link is not None:
            link.start()
        if gallery is not None:
            gallery.start()
        if config.mqtt.broker is not None:
            bridge = BridgeThread(config.mqtt, pipeline.publisher.endpoint, stop)
            bridge.start()

    try:
        outcome = run_notified(pipeline, duration, started, reloader)
    finally:
        stop.set()
        models.close()
        for thread in (reloader, bridge, link, gallery):
            if thread is not None and thread.ident is not None:
                thread.join(THREAD_JOIN_S)
    log.info("run ended: %s", outcome.value)
    return exit_codes.RUNTIME_FAILURE if outcome is RunOutcome.WORKER_FAILED else exit_codes.OK


def start_or_wait_for_server(model: ModelConfig, plan: ThreadPlan, batch_size: int,
                             models_dir: Path) -> Optional[StartPlan]:
    """What serves first; None when the model's server does not answer yet (the service starts anyway and the
    remote link connects when it does). Other ModelErrors propagate (exit 78)."""
    try:
        return start_plan(model, plan, batch_size, models_dir, frame_source)
    except ServerUnreachable as exc:
        log.warning("%s; starting without it, results begin when it answers", exc)
        return None


def remote_link(model: ModelConfig, start: Optional[StartPlan], slot: ModelSlot, stop: threading.Event,
                plan: ThreadPlan, batch_size: int, models_dir: Path) -> Optional[RemoteLink]:
    """For a served model: the link that connects, falls back and returns (None for a local model)."""
    if not is_remote_spec(model.spec):
        return None
    fallback = None
    if model.fallback is not None:
        local = model.model_copy(update={"spec": model.fallback})
        fallback = start_plan(local, plan, batch_size, models_dir, frame_source).serving
        log.info("model.fallback %s is ready to serve while the server does not answer", fallback.model_id)
    return RemoteLink(slot, model, stop, start.serving if start else None, fallback)


def keep_inductor_cache_in(root: Path, environ: MutableMapping[str, str] = os.environ) -> None:
    """Inductor's kernel cache under streamrec's cache directory (unless set), not the shared /tmp/torchinductor_USER."""
    environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(root / "inductor"))


def run_notified(pipeline: Pipeline, duration: Optional[float] = None,
                 started: Callable[[], None] = lambda: None, reloader: Optional[ReloadThread] = None) -> RunOutcome:
    """Run the pipeline, telling systemd (when it started us) READY, STATUS, WATCHDOG, RELOADING and STOPPING;
    `started` runs once the pipeline runs."""
    notifier = NotifierThread.from_environ(pipeline.health.check, pipeline.statuses, pipeline.stop,
                                           model=lambda: pipeline.model.status().describe())
    try:
        pipeline.start()
        started()
        if reloader is not None:
            reloader.notify = notifier.reloading if notifier.enabled else reloader.notify
            reloader.start()
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
