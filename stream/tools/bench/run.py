"""Run the whole benchmark: raw rows, pipeline rows, baseline, agreement, static-scene CPU, start-up; then the goals."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

import cv2
import numpy as np
import torch

from capture.lane import LaneScene
from config.paths import cache_root
from inference.backends.choice import Choice, why_unavailable
from inference.backends.select import RunnerFactory
from inference.errors import ModelError
from inference.imagenet import MODEL_ID, imagenet_labels, load_imagenet_resnet18
from inference.model import Classifier, TorchClassifier
from inference.preprocess import InputSpec
from inference.remote import RemoteClassifier
from inference.threads import configure_torch_threads, plan_threads
from stream.service.calibration import rendered_frames
from stream.tools.bench.agreement import agreement_rows
from stream.tools.bench.goals import goals
from stream.tools.bench.machine import machine_info
from stream.tools.bench.measure import baseline_row, raw_row
from stream.tools.bench.open_catalog import open_catalog_row
from stream.tools.bench.pipeline_run import pipeline_row
from stream.tools.bench.remote import connect, remote_section, unreachable_section
from stream.tools.bench.report import print_table

log = logging.getLogger(__name__)

RAW_CHOICES = (Choice("torch", "fp32"), Choice("torch", "bf16"), Choice("torch", "int8"),
               Choice("openvino", "default"), Choice("openvino", "fp32"), Choice("openvino", "bf16"), Choice("openvino", "int8"))
REFERENCE = Choice("torch", "fp32")
QUICK_SECOND = (Choice("torch", "bf16"), Choice("openvino", "fp32"))
"""--quick measures torch fp32 and the first of these that runs here (a CPU without native bfloat16 compares
OpenVINO with torch instead), so that it always has an agreement row where either is available."""


@dataclass(frozen=True)
class BenchPlan:
    """How much to measure: the full run (several minutes) or --quick (under a minute)."""

    quick: bool = False
    threads: int = 0
    """Model threads in all (0 = the CPUs this process may use), as `model.threads`."""
    lanes: int = 0
    """Model lanes (0 = one per thread), as `model.lanes`."""
    remote: Optional[str] = None
    """A served model (`triton:grpc://HOST:PORT/MODEL`) to measure beside the local rows."""

    @property
    def raw_seconds(self) -> float:
        return 1.0 if self.quick else 4.0

    @property
    def pipeline_seconds(self) -> float:
        return 2.0 if self.quick else 6.0

    @property
    def batches(self) -> tuple[int, ...]:
        return (1, 8)

    @property
    def choices(self) -> tuple[Choice, ...]:
        if not self.quick:
            return RAW_CHOICES
        second = next((c for c in QUICK_SECOND if why_unavailable(c) is None), None)
        return (REFERENCE, second) if second else (REFERENCE,)

    @property
    def camera_counts(self) -> tuple[int, ...]:
        return (1, 2) if self.quick else (1, 2, 4)

    @property
    def kiosk_seconds(self) -> float:
        return 4.0 if self.quick else 10.0


def speed_model() -> tuple[TorchClassifier, str]:
    """ResNet-18 at 224 px: with ImageNet weights when they are here (speed does not depend on the weights)."""
    try:
        return load_imagenet_resnet18(None, allow_download=False), "resnet18-imagenet1k-v1"
    except ModelError:
        from torchvision.models import resnet18

        torch.manual_seed(0)
        return TorchClassifier(resnet18().eval(), imagenet_labels(), MODEL_ID, InputSpec()), "resnet18 (random weights)"


def camera_frames(count: int = 48) -> list[np.ndarray]:
    """640x480 checkout-lane pictures, as a camera delivers them."""
    scene = LaneScene(seed=4242)
    return [scene.render(n) for n in range(0, count * 5, 5)]


class Bench:
    """Collects every part of the benchmark JSON, printing progress to `out`."""

    def __init__(self, plan: BenchPlan, out: TextIO = sys.stderr, cache_dir: Optional[Path] = None) -> None:
        self.plan, self.out = plan, out
        self.cache_dir = cache_dir or cache_root()
        cv2.setNumThreads(1)
        self.thread_plan = configure_torch_threads(plan_threads(plan.threads, plan.lanes))
        self.model, self.model_name = speed_model()
        self.frames = camera_frames(24 if plan.quick else 48)
        self.factory = RunnerFactory(self.model, rendered_frames, self.cache_dir / "models", self.thread_plan, 8)
        self.runners: dict[Choice, Classifier] = {}
        self.skipped: list[dict[str, str]] = []

    @property
    def lanes(self) -> int:
        return self.thread_plan.lanes

    def runner(self, choice: Choice) -> Optional[Classifier]:
        """The runner for `choice` (built once), or None when it cannot run here (recorded in `skipped`)."""
        if choice in self.runners:
            return self.runners[choice]
        reason = why_unavailable(Choice(choice.backend, "fp32" if choice.precision == "default" else choice.precision))
        if reason is None:
            try:
                self._say(f"building {choice.backend} {choice.precision}")
                self.runners[choice] = self.factory(choice)
                return self.runners[choice]
            except Exception as exc:  # a path that fails to build is reported, not fatal
                reason = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        self.skipped.append({"backend": choice.backend, "precision": choice.precision, "reason": reason})
        self._say(f"skipping {choice.backend} {choice.precision}: {reason}")
        return None

    def raw(self) -> list[dict[str, Any]]:
        rows = []
        for choice in self.plan.choices:
            runner = self.runner(choice)
            for batch in self.plan.batches if runner else ():
                row = raw_row(runner, choice.backend, choice.precision, batch, self.plan.raw_seconds, self.lanes)
                rows.append(row)
                with_features = (f", {row['img_per_s_with_features']:.1f} with features ({row['features_ratio']:.3f})"
                                 if row["features_ratio"] else ", no features")
                self._say(f"raw {choice.backend} {choice.precision} batch {batch}: {row['img_per_s']:.1f} img/s"
                          + with_features)
        return rows

    def pipeline(self, choices: list[Choice]) -> list[dict[str, Any]]:
        """Pipeline rows; each unlimited row also has `raw_img_per_s`, the same runner's raw batch-8 speed measured
        just before it, so the pipeline ÷ raw goal compares two measurements seconds apart, not minutes."""
        rows = []
        for choice in choices:
            runner = self.runners[choice]
            for cameras in self.plan.camera_counts:
                for paced in (None, 30.0):
                    adjacent = None if paced else raw_row(runner, choice.backend, choice.precision, 8,
                                                          self.plan.raw_seconds, self.lanes, features=False)
                    row = pipeline_row(runner, choice.backend, choice.precision, cameras, paced,
                                       self.frames, self.plan.pipeline_seconds, lanes=self.lanes)
                    if adjacent:
                        row["raw_img_per_s"] = adjacent["img_per_s"]
                    rows.append(row)
                    self._say(f"pipeline {choice} {cameras} camera(s) {'30 fps' if paced else 'unlimited'}: "
                              f"{row['results_per_s']:.1f} results/s, p99 {row['latency_ms_p99']:.0f} ms, drops {row['drop_rate']:.1%}")
        return rows

    def open_catalog(self, best: Choice) -> Optional[dict[str, Any]]:
        """The best path's model step with 1,000 gallery prototypes vs. without (alternating windows)."""
        row = open_catalog_row(self.runners[best], best.backend, best.precision, self.plan.raw_seconds, self.lanes)
        if row:
            self._say(f"open catalog {best} batch {row['batch']}, {row['gallery_prototypes']} gallery prototypes: "
                      f"{row['img_per_s_open_catalog']:.1f} img/s vs {row['img_per_s_plain']:.1f} plain ({row['ratio']:.3f}); "
                      f"a second look at a split frame {row['second_look_ms']['p50']:.1f} ms")
        return row

    def agreement(self) -> list[dict[str, Any]]:
        rows = []
        for reference, name, frames in self._trained_models():
            factory = RunnerFactory(reference, rendered_frames, self.cache_dir / "models", self.thread_plan, 8)
            candidates = [c for c in self.plan.choices if c != REFERENCE and why_unavailable(
                Choice(c.backend, "fp32" if c.precision == "default" else c.precision)) is None]
            builds: list[tuple[Choice, Callable[[], Classifier]]] = [(c, lambda c=c: factory(c)) for c in candidates]
            rows += agreement_rows(reference, name, builds, frames)
            for row in rows[-len(builds):] if builds else []:
                self._say(f"agreement {name} {row['backend']} {row['precision']}: {row['top1_agreement']:.2%}")
        return rows

    def _trained_models(self):
        from stream.tools.demo import demo_bundle_path, ensure_demo_model

        path = demo_bundle_path(self.cache_dir)
        if path.is_file() or not self.plan.quick:
            bundle = ensure_demo_model(path)
            scene = LaneScene(seed=777)
            yield bundle.to_classifier(), bundle.model_id, [scene.render(n) for n in range(0, 1500 if not self.plan.quick else 300, 5)]
        if self.model_name == "resnet18-imagenet1k-v1":
            yield self.model, self.model_name, rendered_frames(200 if not self.plan.quick else 60, 31)

    def run(self) -> dict[str, Any]:
        """Everything, as the JSON object of DESIGN.md (plus static-scene CPU, start-up and goals)."""
        result: dict[str, Any] = {"machine": machine_info(self.thread_plan), "model": self.model_name, "quick": self.plan.quick}
        remote = self.connect_remote(result)
        result["raw"] = self.raw()
        result["baseline"] = baseline_row(self.model.module, self.frames, self.plan.raw_seconds * 2)
        self._say(f"baseline (PIL + eager fp32, one frame at a time): {result['baseline']['img_per_s']:.1f} img/s")
        best = self.best_choice(result["raw"])
        best_of_each = [self.best_choice(result["raw"], backend) for backend in ("torch", "openvino")
                        if any(r["backend"] == backend and r["precision"] != "default" for r in result["raw"])]
        result["pipeline"] = self.pipeline(list(dict.fromkeys([Choice("torch", "fp32"), *best_of_each, best])))
        result["open_catalog"] = self.open_catalog(best)
        result["agreement"] = self.agreement()
        result["static_scene"] = self.static_scene(best)
        result["startup"] = {} if self.plan.quick else self.startup()
        if remote is not None:
            result["remote"] = remote_section(remote, self.frames, self.plan.pipeline_seconds, self.plan.kiosk_seconds,
                                              self._say)
        result["best"] = {"backend": best.backend, "precision": best.precision}
        result["skipped"] = self.skipped
        result["goals"] = goals(result)
        return result

    def connect_remote(self, result: dict[str, Any]) -> Optional[RemoteClassifier]:
        """The served model of --remote, reached before the local rows so a wrong address shows at once (then the
        `remote` section holds the error and the local rows still run)."""
        if not self.plan.remote:
            return None
        try:
            return connect(self.plan.remote)
        except ModelError as exc:
            self._say(f"remote {self.plan.remote}: {exc}; the remote rows are not measured")
            result["remote"] = unreachable_section(self.plan.remote, exc)
            return None

    def best_choice(self, raw: list[dict[str, Any]], backend: Optional[str] = None) -> Choice:
        """The fastest path at batch 8, of `backend` or of all (int8 and bf16 are only fast paths when they agree
        with fp32; checked below)."""
        rows = [r for r in raw if r["batch"] == 8 and r["precision"] != "default" and backend in (None, r["backend"])]
        top = max(rows, key=lambda r: r["img_per_s"])
        return Choice(top["backend"], top["precision"])

    def static_scene(self, best: Choice) -> dict[str, Any]:
        from stream.tools.bench.skip_cpu import static_scene_row

        row = static_scene_row(self.runners[best], self.frames[0], self.plan.pipeline_seconds, self.lanes)
        self._say(f"static scene at 30 fps with {best}: skip on uses {row['cpu_ratio']:.0%} of the CPU of skip off")
        return {"backend": best.backend, "precision": best.precision, **row}

    def startup(self) -> dict[str, Any]:
        from stream.tools.bench.startup import seconds_to_first_result, start_path
        from stream.tools.demo import demo_bundle_path

        model = demo_bundle_path(self.cache_dir)
        first = seconds_to_first_result(model, self.cache_dir)
        warm = seconds_to_first_result(model, self.cache_dir)
        self._say(f"start-up to first result: {first} s, then {warm} s with a warm cache")
        paths = []
        for backend, precision in (("auto", "auto"), ("torch", "int8"), ("openvino", "int8"), ("openvino", "fp32")):
            if backend != "auto" and why_unavailable(Choice(backend, precision)):
                continue
            row = start_path(model, backend, precision)
            self._say(f"start path {backend} {precision}: first result {row['cold_first_s']} s on an empty cache, "
                      f"{row['runs_on']} from {row['takeover_s']} s; warm start {row['warm_first_s']} s")
            paths.append(row)
        return {"model": str(model), "first_s": first, "warm_s": warm, "paths": paths}

    def _say(self, message: str) -> None:
        self.out.write(f"bench: {message}\n")
        self.out.flush()


def run_bench(plan: BenchPlan, json_path: Optional[Path] = None, out: TextIO = sys.stderr) -> dict[str, Any]:
    """Run, print the table, and write the JSON when asked."""
    result = Bench(plan, out).run()
    print_table(result, sys.stdout)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=json_path.parent, delete=False, suffix=".json") as handle:
            json.dump(result, handle, indent=2)
        Path(handle.name).replace(json_path)
    return result
