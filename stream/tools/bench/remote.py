"""Rows for a served model (`--remote triton:…`): one kiosk in this process (two 30 fps cameras: results/s,
capture-to-publish latency, client CPU per frame beyond preprocessing) and three kiosk processes on the same server
(results in order, nothing lost beyond counted drops)."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from config.schema import ModelConfig
from inference.errors import ModelError
from inference.preprocess import BatchPreprocessor
from inference.remote import RemoteClassifier, load_remote
from stream.tools.bench.kiosks import KioskError, run_kiosks
from stream.tools.bench.pipeline_run import (
    PipelineWindow,
    bench_config,
    measure_pipeline,
    window_figures,
)

CAMERAS, FPS, KIOSKS = 2, 30.0, 3
ROUNDS = 2
BENCH_THREAD = "bench"
"""The bench's own subscriber thread (`bench-subscriber`), not part of the kiosk's cost."""
PREPROCESS_MIN_S = 0.5


def connect(spec: str) -> RemoteClassifier:
    """The served model (ModelError saying why when it cannot be reached or described)."""
    return load_remote(spec, ModelConfig(spec=spec))


def preprocess_cpu_ms(classifier: RemoteClassifier, frames: Sequence[np.ndarray], batch: int = CAMERAS) -> float:
    """Process CPU time per frame of the preprocessing alone in a hot loop (uint8 crops, as the served model takes
    them), in batches of one frame per camera. Inside the paced pipeline the same work costs 2-3 times as much
    (each batch starts on cold caches after a sleep), which is why the pipeline's own preprocessing thread is
    reported too."""
    preprocess = BatchPreprocessor(classifier.input_spec, batch, rgb_uint8=True)
    done, started = 0, time.process_time()
    while time.process_time() - started < PREPROCESS_MIN_S or done < 60:
        first = done % len(frames)
        preprocess([frames[(first + n) % len(frames)] for n in range(batch)])
        done += batch
    return (time.process_time() - started) * 1000.0 / done


class AnswersAtOnce:
    """Stands in for the served model, answering every batch at once without work: the same pipeline's CPU with
    no model at all, so the served model's own share shows."""

    takes_rgb_uint8 = True

    def __init__(self, served: RemoteClassifier) -> None:
        self.input_spec, self.labels, self.model_id = served.input_spec, served.labels, served.model_id

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.zeros((batch.shape[0], len(self.labels)))


def one_kiosk_row(classifier: RemoteClassifier, frames: Sequence[np.ndarray], seconds: float) -> dict[str, Any]:
    """A Pipeline in this process with two 30 fps cameras on the served model, as `streamrec run` drives it, and the
    same pipeline with a model that answers at once, in alternating rounds (so changes in the machine's load hit
    both alike). The served model's client CPU per frame is the difference: the gRPC/HTTP call, tensors in and
    out, its threads; capture, preprocessing, top-k and publishing cost the same with any model."""
    config = bench_config(CAMERAS, FPS, 8, model_spec=str(classifier.spec))
    floor_config = bench_config(CAMERAS, FPS, 8, lanes=config.model.remote_inflight)
    served, floor = [], []
    for _ in range(ROUNDS):
        served.append(measure_pipeline(classifier, config, frames, FPS, seconds))
        floor.append(measure_pipeline(AnswersAtOnce(classifier), floor_config, frames, FPS, seconds))
    window, floor_window = combined(served), combined(floor)
    row = {"cameras": CAMERAS, "paced_fps": FPS, "inflight": config.model.remote_inflight, "rounds": ROUNDS,
           **window_figures(window), "model_call_ms_mean": None, "frames_per_call": None,
           "preprocess_cpu_ms_per_frame": round(preprocess_cpu_ms(classifier, frames), 3),
           **_cpu_figures(window, "cpu_ms_per_frame"), **_cpu_figures(floor_window, "cpu_ms_per_frame_without_model"),
           "client_cpu_ms_per_frame_for_the_model": None}
    if window.results and window.model_calls:
        row.update(model_call_ms_mean=round(window.model_call_s * 1000.0 / window.model_calls, 2),
                   frames_per_call=round(window.results / window.model_calls, 2))
    if row["cpu_ms_per_frame"] is not None and row["cpu_ms_per_frame_without_model"] is not None:
        row["client_cpu_ms_per_frame_for_the_model"] = round(row["cpu_ms_per_frame"] - row["cpu_ms_per_frame_without_model"], 3)
    return row


def combined(windows: Sequence[PipelineWindow]) -> PipelineWindow:
    """One window adding up several measured ones."""
    by_thread: dict[str, float] = {}
    for window in windows:
        for name, spent in window.cpu_s_by_thread.items():
            by_thread[name] = by_thread.get(name, 0.0) + spent
    return PipelineWindow(sum(w.seconds for w in windows), sum(w.results for w in windows),
                          sum(w.captured for w in windows), sum(w.dropped for w in windows),
                          sum(w.cpu_s for w in windows), by_thread, sum(w.model_calls for w in windows),
                          sum(w.model_call_s for w in windows), [ms for w in windows for ms in w.latencies_ms])


def _cpu_figures(window: PipelineWindow, name: str) -> dict[str, Any]:
    """`name`: the process's CPU per result (the bench's own subscriber left out); `name`_by_thread; and
    `name`_beyond_preprocessing: without the pipeline's preprocessing thread."""
    if not window.results:
        return {name: None, f"{name}_by_thread": {}, f"{name}_beyond_preprocessing": None}
    per_frame = {thread: spent * 1000.0 / window.results for thread, spent in window.cpu_s_by_thread.items()}
    total = window.cpu_s * 1000.0 / window.results - per_frame.get(BENCH_THREAD, 0.0)
    shares = {thread: round(ms, 3) for thread, ms in sorted(per_frame.items(), key=lambda item: -item[1])
              if ms > 0 and thread != BENCH_THREAD}
    return {name: round(total, 3), f"{name}_by_thread": shares,
            f"{name}_beyond_preprocessing": round(total - per_frame.get("preprocess", 0.0), 3)}


def remote_section(classifier: RemoteClassifier, frames: Sequence[np.ndarray], seconds: float, kiosk_seconds: float,
                   say: Callable[[str], None]) -> dict[str, Any]:
    """{"spec", "model", "one_kiosk", "kiosks"}, and "error" when the kiosk processes could not be measured."""
    spec = str(classifier.spec)
    one = one_kiosk_row(classifier, frames, seconds)
    section: dict[str, Any] = {"spec": spec, "model": classifier.model_id, "one_kiosk": one, "kiosks": []}
    say(f"remote one kiosk, {CAMERAS} cameras at {FPS:.0f} fps: {one['results_per_s']:.1f} results/s, "
        f"p50 {one['latency_ms_p50']:.0f} ms, p99 {one['latency_ms_p99']:.0f} ms, client CPU "
        f"{one['cpu_ms_per_frame']} ms/frame, {one['client_cpu_ms_per_frame_for_the_model']} ms of it for the model")
    try:
        section["kiosks"] = run_kiosks(spec, KIOSKS, kiosk_seconds, CAMERAS, FPS)
    except KioskError as exc:
        say(f"remote kiosks: {exc}")
        return {**section, "error": str(exc)}
    for row in section["kiosks"]:
        say(f"remote kiosk {row['kiosk']} of {KIOSKS}: {row['results_per_s']:.1f} results/s, p99 "
            f"{row['latency_ms_p99']:.0f} ms, {row['out_of_order']} out of order, {row['lost']} lost")
    return section


def unreachable_section(spec: str, error: ModelError) -> dict[str, Any]:
    """The `remote` section when the server could not be used at all."""
    return {"spec": spec, "error": str(error)}
