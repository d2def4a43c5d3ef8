"""The inference worker: batches from all cameras, preprocessed ahead on a second thread, one model call per batch."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Optional, Protocol, Sequence, Union

import numpy as np
import torch

from capture.frame import Frame
from capture.queue import FrameQueueSet
from config.schema import BatchingConfig
from inference.model import Classifier, takes_bgr_uint8
from inference.preprocess import BatchPreprocessor
from inference.topk import top_k
from stream.result import Result
from stream.skip import ChangeDetector
from stream.stats import WorkerStats
from stream.uploads import UploadChannel

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.2
"""How long the worker waits for work before checking for stop again."""
BUFFERS = 2
"""Batch buffers: the model reads one while the preprocessing thread fills the other."""


class ResultSink(Protocol):
    """Takes results from the worker; must return at once (queue internally if needed)."""

    def submit(self, results: Sequence[Result]) -> None:
        """Accept a batch's results."""


@dataclass
class PreparedBatch:
    """Frames taken together: those the model must see (already in `buffer`), and results reused without it."""

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
    """Takes the next batch from the camera queues and preprocesses it while the model runs the previous one."""

    def __init__(self, queues: FrameQueueSet, preprocessors: list[BatchPreprocessor], skip: Optional[ChangeDetector],
                 batching: BatchingConfig, stop: threading.Event) -> None:
        super().__init__(name="preprocess", daemon=True)
        self._queues, self._preprocessors, self._skip, self._stop_event = queues, preprocessors, skip, stop
        self._max_batch, self._max_wait_s = batching.max_batch, batching.max_wait_ms / 1000.0
        self.free: queue.Queue[int] = queue.Queue()
        for index in range(len(preprocessors)):
            self.free.put(index)
        self.ready: queue.Queue[Handoff] = queue.Queue()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                buffer = self._free_buffer()
                if buffer is None:
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
        skip = self._skip if self._skip is not None and self._skip.active else None
        decided = [skip.reuse(frame) for frame in frames] if skip else [(None, None)] * len(frames)
        to_classify = [frame for frame, (reused, _thumb) in zip(frames, decided) if reused is None]
        inputs = self._preprocessors[buffer]([f.image for f in to_classify]) if to_classify else None
        return PreparedBatch(frames, buffer, inputs, to_classify, [r for r, _ in decided], [t for _, t in decided])


class InferenceWorker(threading.Thread):
    """Runs the model once per batch and hands one result per frame to the sinks; stops on `stop` or when
    every source has ended. Preprocessing of the next batch overlaps the model call (BatchPreparer)."""

    def __init__(
        self,
        queues: FrameQueueSet,
        classifier: Classifier,
        sinks: Sequence[ResultSink],
        stats: WorkerStats,
        stop: threading.Event,
        batching: BatchingConfig,
        top_k: int,
        uploads: Optional[UploadChannel] = None,
        skip: Optional[ChangeDetector] = None,
    ) -> None:
        super().__init__(name="inference", daemon=True)
        self._classifier = classifier
        self._sinks = list(sinks)
        self._stats = stats
        self._stop_event = stop
        self._top_k = top_k
        self._uploads = uploads
        self._skip = skip
        preprocessors = [BatchPreprocessor(classifier.input_spec, batching.max_batch, takes_bgr_uint8(classifier))
                         for _ in range(BUFFERS)]
        self._preparer = BatchPreparer(queues, preprocessors, skip, batching, stop)
        self.sources_ended = threading.Event()

    def run(self) -> None:
        self._preparer.start()
        try:
            while not self._stop_event.is_set():
                try:
                    item = self._preparer.ready.get(timeout=IDLE_POLL_S)
                except queue.Empty:
                    self._stats.record_idle()
                    continue
                if isinstance(item, _SourcesEnded):
                    self._finish_sources()
                    return
                self._classify_and_deliver(item)
        except Exception as exc:
            log.exception("inference worker failed")
            self._stats.record_failure(f"worker failed: {exc}")
            raise
        finally:
            self._preparer.join(2 * IDLE_POLL_S + 1.0)

    def _finish_sources(self) -> None:
        if self._preparer.error is not None:
            self._stats.record_failure(f"preprocessing failed: {self._preparer.error}")
            raise RuntimeError("preprocessing failed") from self._preparer.error
        log.info("every source has ended")
        self.sources_ended.set()

    def _classify_and_deliver(self, batch: PreparedBatch) -> None:
        try:
            results = self._results(batch)
        except Exception as exc:
            self._stats.record_failure(f"{exc.__class__.__name__}: {exc}")
            if self._stats.failed_batches == 1 or self._stats.failed_batches % 100 == 0:
                log.exception("a batch of %d frames failed (%d failed batches)", len(batch.frames), self._stats.failed_batches)
            return
        finally:
            self._preparer.free.put(batch.buffer)
        if self._uploads is not None:
            self._uploads.resolve([r for r in results if UploadChannel.is_upload(r)])
            results = [r for r in results if not UploadChannel.is_upload(r)]
        for sink in self._sinks if results else ():
            try:
                sink.submit(results)
            except Exception:
                log.exception("sink %s failed; the other sinks still get results", type(sink).__name__)

    def _results(self, batch: PreparedBatch) -> list[Result]:
        """One result per frame of the batch, in order: fresh from the model, or reused for unchanged frames."""
        classified = iter(self._run_model(batch.to_classify, batch.inputs) if batch.inputs is not None else [])
        results = []
        for frame, reused, thumb in zip(batch.frames, batch.reused, batch.thumbnails):
            if reused is None:
                reused = next(classified)
                if self._skip is not None:
                    self._skip.remember(reused, thumb)
            else:
                self._stats.record_reused(frame.camera)
            results.append(reused)
        return results

    def _run_model(self, frames: Sequence[Frame], inputs: torch.Tensor) -> list[Result]:
        started = time.monotonic()
        logits = self._classifier.predict(inputs)
        ranked = top_k(logits, self._classifier.labels, self._top_k)
        finished = time.monotonic()
        self._stats.record_batch((frame.camera for frame in frames), finished - started)
        model_id = self._classifier.model_id
        return [Result(frame, predictions, model_id, finished) for frame, predictions in zip(frames, ranked)]
