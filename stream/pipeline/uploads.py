"""Single images (HTTP uploads) classified by the same model and worker as the cameras: they join batches."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Sequence

import numpy as np

from capture.frame import Frame
from capture.queue import FrameQueueSet
from config.schema import DropPolicy
from inference.topk import Prediction
from stream.pipeline.result import Result

UPLOAD_CAMERA = "_upload"
"""The reserved queue id of uploads (camera ids may not start with an underscore)."""
NEVER = threading.Event()


class UploadsBusy(Exception):
    """Too many uploads are waiting for the model; try again shortly."""


class UploadsClosed(Exception):
    """The pipeline is stopping: uploads are no longer classified."""


class UploadChannel:
    """Puts uploaded images on their own queue of the worker's queue set and hands each caller its result."""

    def __init__(self, queues: FrameQueueSet, maxsize: int = 16) -> None:
        self._queue = queues.add(UPLOAD_CAMERA, maxsize, DropPolicy.DROP_OLDEST, is_source=False)
        self._maxsize = maxsize
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False

    def classify(self, image: np.ndarray, timeout: float = 10.0) -> tuple[Prediction, ...]:
        """Top-k for one BGR image; raises UploadsBusy when the queue is full, TimeoutError when too slow,
        UploadsClosed once the pipeline stops."""
        with self._lock:
            if self._closed:
                raise UploadsClosed("the recognizer is stopping")
            if len(self._queue) >= self._maxsize:
                raise UploadsBusy(f"{self._maxsize} uploads are already waiting for the model")
            self._seq += 1
            seq, future = self._seq, Future()
            self._pending[seq] = future
        self._queue.put(Frame(UPLOAD_CAMERA, seq, time.time(), time.monotonic(), image), NEVER)
        try:
            return future.result(timeout)
        finally:
            with self._lock:
                self._pending.pop(seq, None)

    def resolve(self, results: Sequence[Result]) -> None:
        """Hand finished upload results to their callers (called by the worker)."""
        with self._lock:
            futures = [(self._pending.pop(r.frame.seq, None), r) for r in results]
        for future, result in futures:
            if future is not None and not future.done():
                future.set_result(result.topk)

    def close(self) -> None:
        """Fail every waiting upload and refuse new ones (called once the worker has stopped)."""
        with self._lock:
            self._closed = True
            futures = list(self._pending.values())
            self._pending.clear()
        for future in futures:
            if not future.done():
                future.set_exception(UploadsClosed("the recognizer stopped before classifying the image"))

    @staticmethod
    def is_upload(result: Result) -> bool:
        """True for results of uploaded images (they are not published as camera results)."""
        return result.frame.camera == UPLOAD_CAMERA
