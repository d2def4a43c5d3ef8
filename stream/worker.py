"""The inference worker: gather frames from all cameras into batches, classify, hand results to the sinks."""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional, Protocol, Sequence

from capture.frame import Frame
from capture.queue import FrameQueueSet
from config.schema import BatchingConfig
from inference.model import Classifier
from inference.preprocess import BatchPreprocessor
from inference.topk import top_k
from stream.result import Result
from stream.stats import WorkerStats
from stream.uploads import UploadChannel

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.2
"""How long the worker waits for a first frame before checking for stop again."""


class ResultSink(Protocol):
    """Takes results from the worker; must return at once (queue internally if needed)."""

    def submit(self, results: Sequence[Result]) -> None:
        """Accept a batch's results."""


class InferenceWorker(threading.Thread):
    """One thread that runs the model once per batch; stops on `stop` or when every source has ended."""

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
    ) -> None:
        super().__init__(name="inference", daemon=True)
        self._uploads = uploads
        self._queues = queues
        self._classifier = classifier
        self._preprocess = BatchPreprocessor(classifier.input_spec, batching.max_batch)
        self._sinks = list(sinks)
        self._stats = stats
        self._stop_event = stop
        self._max_batch = batching.max_batch
        self._max_wait_s = batching.max_wait_ms / 1000.0
        self._top_k = top_k
        self.sources_ended = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                frames = self._queues.take(self._max_batch, IDLE_POLL_S, self._max_wait_s)
                if frames:
                    self._classify_and_deliver(frames)
                elif self._queues.ended and not self._stop_event.is_set():
                    log.info("every source has ended")
                    self.sources_ended.set()
                    return
                else:
                    self._stats.record_idle()
        except Exception as exc:
            log.exception("inference worker failed")
            self._stats.record_failure(f"worker failed: {exc}")
            raise

    def _classify_and_deliver(self, frames: list[Frame]) -> None:
        try:
            results = self.classify(frames)
        except Exception as exc:
            self._stats.record_failure(f"{exc.__class__.__name__}: {exc}")
            if self._stats.failed_batches == 1 or self._stats.failed_batches % 100 == 0:
                log.exception("a batch of %d frames failed (%d failed batches)", len(frames), self._stats.failed_batches)
            return
        if self._uploads is not None:
            self._uploads.resolve([r for r in results if UploadChannel.is_upload(r)])
            results = [r for r in results if not UploadChannel.is_upload(r)]
        for sink in self._sinks if results else ():
            try:
                sink.submit(results)
            except Exception:
                log.exception("sink %s failed; the other sinks still get results", type(sink).__name__)

    def classify(self, frames: Sequence[Frame]) -> list[Result]:
        """Preprocess, run the model once, and rank: one Result per frame, in order."""
        started = time.monotonic()
        batch = self._preprocess([frame.image for frame in frames])
        logits = self._classifier.predict(batch)
        ranked = top_k(logits, self._classifier.labels, self._top_k)
        finished = time.monotonic()
        self._stats.record_batch((frame.camera for frame in frames), finished - started)
        model_id = self._classifier.model_id
        return [Result(frame, predictions, model_id, finished) for frame, predictions in zip(frames, ranked)]
