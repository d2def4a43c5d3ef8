"""The inference worker: batches from all cameras, preprocessed ahead on a second thread, one model call per batch."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence, Union

import numpy as np
import torch

from capture.frame import Frame
from capture.queue import FrameQueueSet
from config.schema import BatchingConfig
from inference.features import predict_with_features
from inference.model import Classifier, takes_rgb_uint8
from inference.open_catalog import DEFAULT_UNKNOWN_THRESHOLD
from inference.preprocess import BatchPreprocessor
from inference.topk import top_k
from stream.pipeline.model_slot import ModelSlot
from stream.pipeline.result import Result
from stream.pipeline.skip import ChangeDetector
from stream.pipeline.stats import WorkerStats
from stream.pipeline.uploads import UploadChannel

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.2
"""How long the worker waits for work before checking for stop again."""
SPARE_BUFFERS = 1
"""Batch buffers beyond one per model lane: the preprocessing thread fills it while every lane runs the model."""


class ResultSink(Protocol):
    """Takes results from the worker; must return at once (queue internally if needed)."""

    def submit(self, results: Sequence[Result]) -> None:
        """Accept a batch's results."""


@dataclass
class PreparedBatch:
    """Frames taken together: those the model must see (already in `buffer`, prepared for `classifier`), and
    results reused without it. `sequence` numbers batches in the order they were taken, which is the order their
    results are delivered in."""

    sequence: int
    classifier: Classifier
    frames: list[Frame]
    buffer: int
    inputs: Optional[torch.Tensor]
    to_classify: list[Frame]
    reused: list[Optional[Result]]
    thumbnails: list[Optional[np.ndarray]]


class _SourcesEnded:
    """Marker: every source has ended and every queue is drained."""


SOURCES_ENDED = _SourcesEnded()
Handoff = Union[PreparedBatch, _SourcesEnded]


class BatchPreparer(threading.Thread):
    """Takes the next batch from the camera queues and preprocesses it, for the model in `slot` at that moment,
    while the model runs the previous one."""

    def __init__(self, queues: FrameQueueSet, slot: ModelSlot, buffers: int, skip: Optional[ChangeDetector],
                 batching: BatchingConfig, stop: threading.Event) -> None:
        super().__init__(name="preprocess", daemon=True)
        self._queues, self._slot, self._skip, self._stop_event = queues, slot, skip, stop
        self._max_batch, self._max_wait_s = batching.max_batch, batching.max_wait_ms / 1000.0
        self._preprocessors: list[Optional[BatchPreprocessor]] = [None] * buffers
        self.free: queue.Queue[int] = queue.Queue()
        for index in range(buffers):
            self.free.put(index)
        self.ready: queue.Queue[Handoff] = queue.Queue()
        self.error: Optional[BaseException] = None
        self._taken = 0

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                buffer = self._free_buffer()
                if buffer is None:
                    continue
                if self._slot.current is None:  # no model loaded yet: the camera queues keep the newest frames
                    self.free.put(buffer)
                    self._stop_event.wait(IDLE_POLL_S / 4)
                    continue
                frames = self._queues.take(self._max_batch, IDLE_POLL_S, self._max_wait_s)
                if frames:
                    self.ready.put(self.prepare(frames, buffer))
                    continue
                self.free.put(buffer)
                if self._queues.ended and not self._stop_event.is_set():
                    self.ready.put(SOURCES_ENDED)
                    return
        except BaseException as exc:  # hand the failure to the worker, which reports it
            self.error = exc
            log.exception("preprocessing failed")
            self.ready.put(SOURCES_ENDED)

    def _free_buffer(self) -> Optional[int]:
        try:
            return self.free.get(timeout=IDLE_POLL_S)
        except queue.Empty:
            return None

    def prepare(self, frames: list[Frame], buffer: int) -> PreparedBatch:
        """Decide which frames need the model and write those into `buffer`."""
        classifier = self._slot.current
        skip = self._skip if self._skip is not None and self._skip.active else None
        decided = [skip.reuse(frame, classifier.model_id) for frame in frames] if skip else [(None, None)] * len(frames)
        to_classify = [frame for frame, (reused, _thumb) in zip(frames, decided) if reused is None]
        inputs = self._preprocessor(buffer, classifier)([f.image for f in to_classify]) if to_classify else None
        self._taken += 1
        return PreparedBatch(self._taken - 1, classifier, frames, buffer, inputs, to_classify, [r for r, _ in decided],
                             [t for _, t in decided])

    def _preprocessor(self, buffer: int, classifier: Classifier) -> BatchPreprocessor:
        """The buffer's preprocessor, rebuilt when a swapped-in model takes another input (size or uint8 crops)."""
        current = self._preprocessors[buffer]
        rgb_uint8 = takes_rgb_uint8(classifier)
        if current is None or current.spec != classifier.input_spec or current.rgb_uint8 != rgb_uint8:
            current = BatchPreprocessor(classifier.input_spec, self._max_batch, rgb_uint8)
            self._preprocessors[buffer] = current
        return current


@dataclass
class ClassifiedBatch:
    """A batch after the model: one result per frame in order (None when the model call failed), and the
    thumbnails of the frames the model saw, for the skip detector."""

    sequence: int
    results: Optional[list[Result]]
    fresh: list[tuple[Result, Optional[np.ndarray]]]


class InOrderDelivery:
    """Passes batches to `deliver` in the order they were taken, whichever model lane finishes first, so every
    camera's results leave in capture order. `deliver` runs under a lock and must return at once."""

    def __init__(self, deliver: Callable[[ClassifiedBatch], None]) -> None:
        self._deliver = deliver
        self._lock = threading.Lock()
        self._next = 0
        self._waiting: dict[int, ClassifiedBatch] = {}

    def __call__(self, batch: ClassifiedBatch) -> None:
        with self._lock:
            self._waiting[batch.sequence] = batch
            while self._next in self._waiting:
                ready = self._waiting.pop(self._next)
                self._next += 1
                self._deliver(ready)


class InferenceWorker(threading.Thread):
    """Runs the model on prepared batches in `lanes` threads at once (this thread and lanes - 1 helpers) and hands
    one result per frame to the sinks, in capture order; stops on `stop` or when every source has ended.
    Preprocessing of the next batch overlaps the model calls (BatchPreparer)."""

    def __init__(
        self,
        queues: FrameQueueSet,
        model: Union[Classifier, ModelSlot],
        sinks: Sequence[ResultSink],
        stats: WorkerStats,
        stop: threading.Event,
        batching: BatchingConfig,
        top_k: int,
        uploads: Optional[UploadChannel] = None,
        skip: Optional[ChangeDetector] = None,
        lanes: int = 1,
        unknown_threshold: float = DEFAULT_UNKNOWN_THRESHOLD,
    ) -> None:
        super().__init__(name="inference", daemon=True)
        self.model = model if isinstance(model, ModelSlot) else ModelSlot(model)
        self._sinks = list(sinks)
        self._stats = stats
        self._stop_event = stop
        self._top_k = top_k
        self._unknown_threshold = unknown_threshold
        self._uploads = uploads
        self._skip = skip
        self._preparer = BatchPreparer(queues, self.model, lanes + SPARE_BUFFERS, skip, batching, stop)
        self._delivery = InOrderDelivery(self._deliver)
        self._helpers = [threading.Thread(target=self._helper_lane, name=f"inference-lane-{n}", daemon=True)
                         for n in range(1, lanes)]
        self._helper_error: Optional[BaseException] = None
        self.sources_ended = threading.Event()

    def run(self) -> None:
        self._preparer.start()
        for helper in self._helpers:
            helper.start()
        try:
            ended = self._lane()
            for helper in self._helpers:
                helper.join()
            if self._helper_error is not None:
                raise RuntimeError(f"a model lane failed: {self._helper_error}") from self._helper_error
            if ended:
                self._finish_sources()
        except Exception as exc:
            log.exception("inference worker failed")
            self._stats.record_failure(f"worker failed: {exc}")
            raise
        finally:
            self._preparer.join(2 * IDLE_POLL_S + 1.0)

    def _lane(self) -> bool:
        """Run batches until stop (False) or the end of every source (True)."""
        while not self._stop_event.is_set() and self._helper_error is None:
            try:
                item = self._preparer.ready.get(timeout=IDLE_POLL_S)
            except queue.Empty:
                self._stats.record_idle()
                continue
            if isinstance(item, _SourcesEnded):
                self._preparer.ready.put(item)  # for the other lanes
                return True
            self._classify(item)
        return False

    def _helper_lane(self) -> None:
        try:
            self._lane()
        except BaseException as exc:  # the main lane sees it and fails the worker
            log.exception("model lane %s failed", threading.current_thread().name)
            self._helper_error = exc

    def _finish_sources(self) -> None:
        if self._preparer.error is not None:
            self._stats.record_failure(f"preprocessing failed: {self._preparer.error}")
            raise RuntimeError("preprocessing failed") from self._preparer.error
        log.info("every source has ended")
        self.sources_ended.set()

    def _classify(self, batch: PreparedBatch) -> None:
        results, fresh = None, []
        try:
            results, fresh = self._results(batch)
        except Exception as exc:
            self._stats.record_failure(f"{exc.__class__.__name__}: {exc}", (frame.camera for frame in batch.frames))
            if self._stats.failed_batches == 1 or self._stats.failed_batches % 100 == 0:
                log.exception("a batch of %d frames failed (%d failed batches)", len(batch.frames), self._stats.failed_batches)
        finally:
            self._preparer.free.put(batch.buffer)
            self._delivery(ClassifiedBatch(batch.sequence, results, fresh))

    def _results(self, batch: PreparedBatch) -> tuple[list[Result], list[tuple[Result, Optional[np.ndarray]]]]:
        """One result per frame of the batch, in order (fresh from the model, or reused for unchanged frames),
        and the fresh ones with their thumbnails."""
        classified = iter(self._run_model(batch.classifier, batch.to_classify, batch.inputs)
                          if batch.inputs is not None else [])
        results, fresh = [], []
        for reused, thumb in zip(batch.reused, batch.thumbnails):
            if reused is None:
                reused = next(classified)
                fresh.append((reused, thumb))
            results.append(reused)
        return results, fresh

    def _deliver(self, batch: ClassifiedBatch) -> None:
        """Remember, count and hand on one batch's results (in batch order; see InOrderDelivery)."""
        if batch.results is None:
            return
        for result, thumb in batch.fresh if self._skip is not None else ():
            self._skip.remember(result, thumb)
        for result in batch.results:
            if result.reused:
                self._stats.record_reused(result.camera)
        results = batch.results
        if self._uploads is not None:
            self._uploads.resolve([r for r in results if UploadChannel.is_upload(r)])
            results = [r for r in results if not UploadChannel.is_upload(r)]
        for sink in self._sinks if results else ():
            try:
                sink.submit(results)
            except Exception:
                log.exception("sink %s failed; the other sinks still get results", type(sink).__name__)

    def _run_model(self, classifier: Classifier, frames: Sequence[Frame], inputs: torch.Tensor) -> list[Result]:
        started = time.monotonic()
        catalog = self.model.catalog_for(classifier)
        try:
            logits, features = predict_with_features(classifier, inputs) if catalog else (classifier.predict(inputs), None)
        except Exception:
            self.model.report(classifier, ok=False)
            raise
        self.model.report(classifier, ok=True)
        finished = time.monotonic()
        self._stats.record_batch((frame.camera for frame in frames), finished - started)
        model_id = classifier.model_id
        if catalog is None or features is None:
            ranked = top_k(logits, classifier.labels, self._top_k)
            return [Result(frame, predictions, model_id, finished) for frame, predictions in zip(frames, ranked)]
        found = catalog.recognize(logits, features, self._top_k, [frame.image for frame in frames],
                                  [frame.camera for frame in frames])
        return [Result(frame, r.ranked, model_id, finished, unknown_score=r.unknown_score,
                       unknown=r.unknown_score >= self._unknown_threshold, second_look=r.second_look,
                       unconfirmed=r.unconfirmed)
                for frame, r in zip(frames, found)]
