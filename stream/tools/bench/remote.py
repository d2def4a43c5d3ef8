"""Rows for a served model (`--remote triton:…`): one kiosk in this process (two 30 fps cameras: results/s,
capture-to-publish latency, client CPU per frame beyond preprocessing) and three kiosk processes on the same server
(results in order, nothing lost beyond counted drops)."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

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
PREPROCESS_MIN_S = 0.5


def connect(spec: str) -> RemoteClassifier:
    """The served model (ModelError saying why when it cannot be reached or described)."""
    return load_remote(spec, ModelConfig(spec=spec))


def preprocess_cpu_ms(classifier: RemoteClassifier, frames: Sequence[np.ndarray], batch: int = CAMERAS) -> float:
    """Process CPU time per frame of the preprocessing alone (uint8 crops, as the served model takes them), in
    batches of one frame per camera."""
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
    """A Pipeline in this process with two 30 fps cameras on the served model, as `streamrec run` drives it; its CPU
    per frame beside that of preprocessing alone and that of the same pipeline without a model."""
    config = bench_config(CAMERAS, FPS, 8, model_spec=str(classifier.spec))
    window = measure_pipeline(classifier, config, frames, FPS, seconds)
    floor = measure_pipeline(AnswersAtOnce(classifier), bench_config(CAMERAS, FPS, 8, lanes=config.model.remote_inflight),
                             frames, FPS, seconds)
    preprocess_ms = preprocess_cpu_ms(classifier, frames)
    row = {"cameras": CAMERAS, "paced_fps": FPS, "inflight": config.model.remote_inflight, **window_figures(window),
           "model_call_ms_mean": None, "frames_per_call": None, "cpu_ms_per_frame": None,
           "preprocess_cpu_ms_per_frame": round(preprocess_ms, 3), "cpu_ms_per_frame_beyond_preprocessing": None,
           "cpu_ms_per_frame_without_model": _cpu_ms_per_frame(floor)}
    if window.results and window.model_calls:
        cpu_ms = _cpu_ms_per_frame(window)
        row.update(model_call_ms_mean=round(window.model_call_s * 1000.0 / window.model_calls, 2),
                   frames_per_call=round(window.results / window.model_calls, 2), cpu_ms_per_frame=cpu_ms,
                   cpu_ms_per_frame_beyond_preprocessing=round(cpu_ms - preprocess_ms, 3),
                   cpu_ms_per_frame_by_thread=_by_thread(window))
    return row


def _cpu_ms_per_frame(window: PipelineWindow) -> Optional[float]:
    return round(window.cpu_s * 1000.0 / window.results, 3) if window.results else None


def _by_thread(window: PipelineWindow) -> dict[str, float]:
    shares = {name: round(spent * 1000.0 / window.results, 3) for name, spent in window.cpu_s_by_thread.items()}
    return {name: ms for name, ms in sorted(shares.items(), key=lambda item: -item[1]) if ms > 0}


def remote_section(classifier: RemoteClassifier, frames: Sequence[np.ndarray], seconds: float, kiosk_seconds: float,
                   say: Callable[[str], None]) -> dict[str, Any]:
    """{"spec", "model", "one_kiosk", "kiosks"}, and "error" when the kiosk processes could not be measured."""
    spec = str(classifier.spec)
    one = one_kiosk_row(classifier, frames, seconds)
    section: dict[str, Any] = {"spec": spec, "model": classifier.model_id, "one_kiosk": one, "kiosks": []}
    say(f"remote one kiosk, {CAMERAS} cameras at {FPS:.0f} fps: {one['results_per_s']:.1f} results/s, "
        f"p50 {one['latency_ms_p50']:.0f} ms, p99 {one['latency_ms_p99']:.0f} ms, client CPU "
        f"{one['cpu_ms_per_frame']} ms/frame ({one['preprocess_cpu_ms_per_frame']} ms preprocessing)")
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
