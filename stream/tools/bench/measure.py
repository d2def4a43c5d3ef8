"""Raw model speed and the straightforward-script baseline."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any, Sequence

import numpy as np
import torch

from inference.model import Classifier
from inference.speed import timed_calls
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


def raw_row(classifier: Classifier, backend: str, precision: str, batch: int, seconds: float,
            lanes: int = 1) -> dict[str, Any]:
    """Images per second and per-call latency for repeated calls on one random batch from `lanes` threads at once,
    as the worker's model lanes call it."""
    crop = classifier.input_spec.crop
    calls = timed_calls(classifier, torch.randn(batch, 3, crop, crop), seconds, lanes)
    latencies = calls.latencies_ms
    return {"backend": backend, "precision": precision, "batch": batch, "lanes": lanes,
            "img_per_s": round(calls.img_per_s, 2),
            "latency_ms_p50": round(percentile(latencies, 50), 2), "latency_ms_p99": round(percentile(latencies, 99), 2)}


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
