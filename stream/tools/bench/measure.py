"""Raw model speed and the straightforward-script baseline."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any, Optional, Sequence

import numpy as np
import torch

from inference.features import predict_with_features
from inference.model import Classifier
from inference.speed import CallTimes, timed_calls
from inference.threads import available_cpus


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, 0 when empty."""
    return float(np.percentile(values, q)) if len(values) else 0.0


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds so far of this process's threads, summed by the first word of the thread's name (`capture-cam0`
    and `capture-cam1` count as `capture`); threads Python did not start (gRPC, ZeroMQ, torch) count as `native`.
    Linux only ({} elsewhere)."""
    names = {thread.native_id: thread.name.split("-")[0] for thread in threading.enumerate()}
    found: Counter[str] = Counter()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return {}
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        found[names.get(int(task), "native")] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return dict(found)


FEATURE_WINDOWS = (False, True, True, False) * 2
"""Windows of raw_row: logits only, with features, with features, logits only, twice, so that a drift of the
machine's speed during the row, or a neighbour's burst, hits both alike."""


class _WithFeatures:
    """`classifier` for timed_calls (which calls `predict`), with its `predict_with_features` as `predict`."""

    def __init__(self, classifier: Classifier) -> None:
        self._classifier = classifier

    def predict(self, batch: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        return predict_with_features(self._classifier, batch)


def raw_row(classifier: Classifier, backend: str, precision: str, batch: int, seconds: float,
            lanes: int = 1, features: bool = True) -> dict[str, Any]:
    """Images per second and per-call latency for repeated calls on one random batch from `lanes` threads at once,
    as the worker's model lanes call it. With `features` (and a path that gives them), also images per second of
    `predict_with_features`, measured for `seconds` as well in windows alternating with `predict`'s."""
    crop = classifier.input_spec.crop
    tensor = torch.randn(batch, 3, crop, crop)
    width = None
    if features:
        features_out = predict_with_features(classifier, tensor)[1]
        width = None if features_out is None else int(features_out.shape[1])
    if width is None:
        calls, with_features = timed_calls(classifier, tensor, seconds, lanes), None
    else:
        calls, with_features = _alternating(classifier, tensor, seconds, lanes)
    latencies = calls.latencies_ms
    ratio = with_features.img_per_s / calls.img_per_s if with_features else None
    return {"backend": backend, "precision": precision, "batch": batch, "lanes": lanes,
            "img_per_s": round(calls.img_per_s, 2),
            "latency_ms_p50": round(percentile(latencies, 50), 2), "latency_ms_p99": round(percentile(latencies, 99), 2),
            "feature_dim": width,
            "img_per_s_with_features": round(with_features.img_per_s, 2) if with_features else None,
            "features_ratio": round(ratio, 3) if ratio else None}


def _alternating(classifier: Classifier, batch: torch.Tensor, seconds: float, lanes: int) -> tuple[CallTimes, CallTimes]:
    """(predict, predict_with_features) timed in FEATURE_WINDOWS, `seconds` for each in all."""
    measured: dict[bool, list[CallTimes]] = {False: [], True: []}
    window = seconds / FEATURE_WINDOWS.count(True)
    for index, features in enumerate(FEATURE_WINDOWS):
        model = _WithFeatures(classifier) if features else classifier
        warmup = 2 if index < 2 else 0  # the first window of each
        measured[features].append(timed_calls(model, batch, window, lanes, warmup_calls=warmup))
    return _together(measured[False]), _together(measured[True])


def _together(windows: list[CallTimes]) -> CallTimes:
    return CallTimes([ms for calls in windows for ms in calls.latencies_ms], sum(calls.elapsed_s for calls in windows),
                     windows[0].batch)


def baseline_row(module: torch.nn.Module, frames: Sequence[np.ndarray], seconds: float) -> dict[str, Any]:
    """What a straightforward script does: PIL preprocessing (torchvision transforms), eager fp32, one frame at a time,
    on torch's default threads (one per CPU, whatever the model lanes use)."""
    from PIL import Image
    from torchvision.models import ResNet18_Weights

    transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
    module = module.eval()
    lane_threads = torch.get_num_threads()
    torch.set_num_threads(available_cpus())
    try:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds or count < 3:
            rgb = Image.fromarray(frames[count % len(frames)][:, :, ::-1])
            with torch.no_grad():
                module(transform(rgb).unsqueeze(0)).softmax(1).topk(3)
            count += 1
    finally:
        torch.set_num_threads(lane_threads)
    return {"img_per_s": round(count / (time.perf_counter() - started), 2), "preprocessing": "PIL (torchvision transforms)",
            "backend": "torch eager fp32, batch 1"}
