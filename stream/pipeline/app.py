"""The composition root: build capture threads, worker, publisher and overlay from a config; start and stop them in order."""

from __future__ import annotations

import enum
import logging
import threading
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import zmq

from capture.factory import SourceFactory
from capture.native_logs import keep_credentials_out_of_native_logs
from capture.queue import FrameQueueSet
from capture.status import CameraStatus
from capture.thread import CaptureThread
from config.schema import AppConfig
from inference.model import Classifier
from inference.remote import is_remote_spec
from inference.threads import plan_threads
from stream.overlay.display import DisplaySink
from stream.overlay.latest import LatestResults
from stream.pipeline.events import EventTracker
from stream.pipeline.health import PipelineHealth
from stream.pipeline.model_slot import ModelSlot
from stream.pipeline.skip import ChangeDetector
from stream.pipeline.stats import WorkerStats
from stream.pipeline.uploads import UploadChannel
from stream.pipeline.worker import InferenceWorker, ResultSink
from stream.wire.encoder import WireEncoder, new_boot_id
from stream.wire.heartbeat import camera_entries
from stream.wire.publisher import PublisherThread, ZmqPublisher

if TYPE_CHECKING:
    from stream.web.enroll_desk import EnrollDesk
    from stream.web.server import WebServer

log = logging.getLogger(__name__)

CAPTURE_JOIN_S = 1.0
WORKER_JOIN_S = 0.6
PUBLISHER_JOIN_S = 0.3


class RunOutcome(str, enum.Enum):
    """Why a run ended."""

    STOPPED = "stopped"
    """A signal, --duration or the overlay window."""
    SOURCES_ENDED = "sources_ended"
    """Every (file) source reached its end."""
    WORKER_FAILED = "worker_failed"


class Pipeline:
    """All threads of one run, wired together; `run()` starts them, waits, and shuts them down in order."""

    def __init__(
        self,
        config: AppConfig,
        classifier: Union[Classifier, ModelSlot],
        stop: threading.Event,
        *,
        source_factory: Optional[SourceFactory] = None,
        show_window: bool = False,
        extra_sinks: Sequence[ResultSink] = (),
        context: Optional[zmq.Context] = None,
        reload_requested: Optional[threading.Event] = None,
    ) -> None:
        self.config = config
        self.stop = stop
        self.reload_requested = reload_requested or threading.Event()
        """Set to reload the configuration (SIGHUP, POST /api/reload); the service's reload thread acts on it."""
        factory = source_factory or SourceFactory()
        self.statuses = [CameraStatus(camera.id, camera.spec.safe_text) for camera in config.cameras]
        self.queues = FrameQueueSet()
        self.stats = WorkerStats()
        self.tracker = EventTracker(config.events)
        self.model = classifier if isinstance(classifier, ModelSlot) else ModelSlot(classifier)
        """The model the worker runs; swap it (between batches) with `self.model.swap`."""
        self.encoder = WireEncoder(new_boot_id())
        publisher_cfg = config.publisher
        self.publisher = ZmqPublisher.from_config(publisher_cfg, context)
        self.publisher_thread = PublisherThread(
            self.publisher, self.encoder, self.tracker, self.heartbeat_cameras, publisher_cfg, config.freshness,
            lambda: self.model.status().wire(),
        )
        self.display = self._build_display() if show_window else None
        self.uploads = UploadChannel(self.queues)
        self.web_latest = self._build_latest() if config.http.enabled else None
        sinks: list[ResultSink] = [self.publisher_thread, *(s for s in (self.display, self.web_latest) if s), *extra_sinks]
        self.worker = InferenceWorker(
            self.queues, self.model, sinks, self.stats, stop, config.batching, config.model.top_k, self.uploads,
            ChangeDetector.from_config(config), model_lanes(config), config.model.unknown_threshold,
        )
        self.captures = [
            CaptureThread(
                camera,
                partial(factory, camera),
                self.queues.add(camera.id, camera.queue_size, camera.effective_drop_policy, status.frame_dropped),
                status,
                stop,
            )
            for camera, status in zip(config.cameras, self.statuses)
        ]
        self.health = PipelineHealth(self.stats, self.worker, self.publisher_thread, self.captures, self.statuses,
                                     model_status=self.model.status)
        self.web = self._build_web() if self.web_latest else None

    def _build_display(self) -> DisplaySink:
        overlay = self.config.overlay
        stale_s = self.config.freshness.stale_after_ms / 1000.0
        return DisplaySink(
            self.statuses, self.tracker.item_caption, overlay.window_title, overlay.max_fps, stale_s, overlay.fullscreen
        )

    def _build_latest(self) -> LatestResults:
        return LatestResults(self.statuses, self.tracker.item_caption, self.config.freshness.stale_after_ms / 1000.0)

    def _build_web(self) -> "WebServer":
        from stream.web.auth import load_token  # aiohttp is imported only when the web interface is on
        from stream.web.context import WebContext
        from stream.web.server import WebServer

        context = WebContext(
            http=self.config.http, model=self.model, statuses=self.statuses, stats=self.stats,
            latest=self.web_latest, uploads=self.uploads, health=self.health, publisher=self.publisher,
            publisher_thread=self.publisher_thread, current_item=self.tracker.item_caption,
            reload_requested=self.reload_requested, enroll_desk=self._enroll_desk(),
            token=load_token(self.config.http),
        )
        return WebServer(context)

    def _enroll_desk(self) -> Optional["EnrollDesk"]:
        from stream.web.enroll_desk import EnrollDesk

        path = Path(self.config.model.spec.strip()).expanduser()
        if not path.is_file():
            return None
        latest = self.web_latest

        def frame_of(camera: str):
            result = latest.latest(camera) if latest else None
            return (result.frame.seq, result.frame.image) if result else None

        return EnrollDesk(path, frame_of, self.stop)

    def heartbeat_cameras(self) -> dict[str, dict]:
        """The `cameras` object of the next heartbeat."""
        return camera_entries(self.statuses, self.stats, self.tracker.current_item)

    def start(self) -> None:
        """Bind the publisher and the web server (raising PublishError/WebError), then start publisher, worker and cameras."""
        keep_credentials_out_of_native_logs()  # before any camera opens: OpenCV reads these settings once
        self.publisher.bind()
        if self.web is not None:
            self.web.start()
        self.publisher_thread.start()
        self.worker.start()
        for capture in self.captures:
            capture.start()
        log.info("pipeline started: %d camera(s), boot id %s", len(self.captures), self.encoder.boot)

    def wait(self, duration: Optional[float] = None) -> RunOutcome:
        """Block until stop, --duration, the end of every source, or a worker failure."""
        deadline = None if duration is None else time.monotonic() + duration

        def keep_running() -> bool:
            return (
                not self.stop.is_set()
                and not self.worker.sources_ended.is_set()
                and self.worker.is_alive()
                and (deadline is None or time.monotonic() < deadline)
            )

        if self.display is not None and self.display.run(keep_running):
            self.stop.set()
        while keep_running():
            self.stop.wait(0.1)
        if self.worker.sources_ended.is_set():
            return RunOutcome.SOURCES_ENDED
        if not self.worker.is_alive() and not self.stop.is_set():
            return RunOutcome.WORKER_FAILED
        return RunOutcome.STOPPED

    def shutdown(self) -> None:
        """Stop and join in order: web server, cameras, worker, publisher (which flushes and says goodbye), then the socket."""
        self.stop.set()
        if self.web is not None:
            self.web.stop()
        _join_all(self.captures, CAPTURE_JOIN_S)
        self.queues.wake()
        _join_all([self.worker], WORKER_JOIN_S)
        self.uploads.close()
        self.publisher_thread.close()
        _join_all([self.publisher_thread], PUBLISHER_JOIN_S)
        self.publisher.close()
        log.info("pipeline stopped")

    def run(self, duration: Optional[float] = None) -> RunOutcome:
        """start(), wait(), shutdown()."""
        try:
            self.start()
            return self.wait(duration)
        finally:
            self.shutdown()


def model_lanes(config: AppConfig) -> int:
    """Batches the model runs at once: `model.remote_inflight` for a served model (the calls wait on the network),
    else the thread plan's lanes."""
    if is_remote_spec(config.model.spec):
        return config.model.remote_inflight
    return plan_threads(config.model.threads, config.model.lanes).lanes


def _join_all(threads: Sequence[threading.Thread], budget_s: float) -> None:
    deadline = time.monotonic() + budget_s
    for thread in threads:
        if thread.ident is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
    for thread in threads:
        if thread.is_alive():
            log.warning("thread %s did not stop within %.1f s; leaving it behind", thread.name, budget_s)
