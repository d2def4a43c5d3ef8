"""CPU cost of a static scene with skipping on, against the same scene with skipping off."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from capture.replay import ReplaySource
from inference.model import Classifier
from stream.pipeline.app import Pipeline
from stream.tools.bench.pipeline_run import WARMUP_S, bench_config


def cpu_seconds(classifier: Classifier, picture: np.ndarray, skip: str, seconds: float, lanes: int = 1) -> float:
    """Process CPU time (all threads) spent while one camera shows `picture` at 30 fps."""
    config = bench_config(1, 30.0, 8, skip=skip, lanes=lanes)
    pipeline = Pipeline(config, classifier, threading.Event(), source_factory=lambda _c: ReplaySource([picture], 30.0))
    pipeline.start()
    try:
        time.sleep(WARMUP_S)
        started = time.process_time()
        time.sleep(seconds)
        return time.process_time() - started
    finally:
        pipeline.shutdown()


def static_scene_row(classifier: Classifier, picture: np.ndarray, seconds: float, lanes: int = 1) -> dict[str, Any]:
    """{"cpu_s_skip_off", "cpu_s_skip_on", "cpu_ratio"} for one static camera at 30 fps."""
    off = cpu_seconds(classifier, picture, "off", seconds, lanes)
    on = cpu_seconds(classifier, picture, "on", seconds, lanes)
    return {"seconds": seconds, "fps": 30.0, "cpu_s_skip_off": round(off, 3), "cpu_s_skip_on": round(on, 3),
            "cpu_ratio": round(on / off, 3) if off else None}
