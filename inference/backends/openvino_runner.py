"""OpenVINO on the CPU, converted from the same torch model: fp32, bf16 (its default on such CPUs), or int8 (NNCF).

Converted models are cached as OpenVINO IR, and compiled blobs in OpenVINO's own cache directory. The model's one
output is the logits followed by the penultimate features (inference/features.py).
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from inference.artifacts import first_line, quarantine, seal, staged, unsealed_reason
from inference.backends.choice import NotCached
from inference.features import split
from inference.model import TorchClassifier
from inference.preprocess import InputSpec
from inference.threads import ThreadPlan

log = logging.getLogger(__name__)

PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}


IR_FILE = "model.xml"


def ir_folder(precision: str) -> str:
    """The folder of the OpenVINO model converted for `precision` (fp32 and bf16 share the float one)."""
    return "ir-int8" if precision == "int8" else "ir-float"


def cached_model(ir_dir: Path):
    """The converted model saved in `ir_dir` by an earlier start, or None (a damaged one goes to quarantine)."""
    import openvino as ov

    if not ir_dir.is_dir():
        return None
    try:
        reason = unsealed_reason(ir_dir)
        if reason is not None:
            raise ValueError(reason)
        return ov.Core().read_model(str(ir_dir / IR_FILE))
    except Exception as exc:
        quarantine(ir_dir, first_line(exc))
        return None


def _convert(source: TorchClassifier, precision: str, calibration: Callable[[], torch.Tensor], ir_dir: Path,
             build: bool = True):
    """The model converted (and for int8 quantized) to OpenVINO, from the cache or converted now and cached
    (NotCached instead when `build` is False)."""
    import openvino as ov

    cached = cached_model(ir_dir)
    if cached is not None:
        return cached
    if not build:
        raise NotCached(f"no converted OpenVINO model in {ir_dir}")
    calibration = calibration()
    crop = source.input_spec.crop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = (source.features_module() or source.module).eval()
        model = ov.convert_model(module, example_input=calibration[:1], input=[(-1, 3, crop, crop)])
        if precision == "int8":
            import nncf

            dataset = nncf.Dataset([calibration[i:i + 1].numpy() for i in range(len(calibration))])
            model = nncf.quantize(model, dataset, subset_size=len(calibration), preset=nncf.QuantizationPreset.PERFORMANCE)
    with staged(ir_dir, directory=True) as partial:
        ov.save_model(model, str(partial / IR_FILE))
        ov.Core().read_model(str(partial / IR_FILE))  # it loads before it replaces anything
    seal(ir_dir)
    return model


def compile_config(core, precision: str, threads: int, cache_dir: Path) -> dict:
    """CPU plugin settings: one stream on all `threads` (latency mode), and TBB's AUTO partitioner where the
    plugin has it.

    With the default STATIC partitioner each thread owns a fixed share of every layer, so when preprocessing or
    capture takes a core for a moment the other model thread waits at the end of the layer; AUTO lets it take
    over that work. Measured with OpenVINO int8, batch 8, one unlimited camera, 4 alternating rounds in one process:
    pipeline / raw 0.882 against 0.855, raw unchanged. Blobs compiled with other settings keep theirs when
    imported from the cache, so each setting has its own blob directory.

    One stream even when the worker runs several model lanes: two one-thread streams gave the same pipeline
    throughput with one camera (208-211 against 208-209 results/s, OpenVINO int8, batch 8) and less with two
    and four (197 and 192 against 209 and 205), at longer latency (p99 24 against 15 ms, two cameras at 30 fps)."""
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision in PRECISION_HINTS:
        config["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[precision]
    blobs = cache_dir / "blobs"
    if "TBB_PARTITIONER" in core.get_property("CPU", "SUPPORTED_PROPERTIES"):
        config["TBB_PARTITIONER"] = "AUTO"
        blobs = blobs / "tbb-auto"
    config["CACHE_DIR"] = str(blobs)
    return config


def with_rgb_uint8_input(model, spec: InputSpec):
    """A copy of `model` that takes uint8 NHWC RGB crops and converts, reorders and normalizes them in its graph."""
    from openvino import Layout, Type
    from openvino.preprocess import ColorFormat, PrePostProcessor

    steps = PrePostProcessor(model.clone())
    steps.input().tensor().set_element_type(Type.u8).set_layout(Layout("NHWC")).set_color_format(ColorFormat.RGB)
    steps.input().model().set_layout(Layout("NCHW"))
    steps.input().preprocess().convert_element_type(Type.f32) \
        .mean([255.0 * m for m in spec.mean]).scale([255.0 * s for s in spec.std])
    return steps.build()


class _Compiled:
    """One compiled model with its infer request; model lanes take turns with it (the next lane's call starts
    the moment the previous one returns, while that lane hands its results on)."""

    def __init__(self, core, model, config: dict) -> None:
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.output(0)
        self._turn = threading.Lock()

    def infer(self, inputs: np.ndarray) -> torch.Tensor:
        with self._turn:
            result = self.request.infer({0: inputs})
            return torch.from_numpy(np.array(result[self.output], dtype=np.float32, copy=True))


class OpenVinoRunner:
    """The model compiled by OpenVINO with one infer request that model lanes take turns with, for uint8 NHWC RGB
    crops, and a second one compiled on first use for normalized float NCHW batches (agreement, `auto`, raw speed).
    Crops are what the pipeline sends: normalization runs inside the model's graph, on the model's threads, at no measurable cost, and the
    preprocessing thread that competes with the model for the CPU spends 0.31 instead of 0.44 ms a frame)."""

    takes_rgb_uint8 = True

    def __init__(self, source: TorchClassifier, precision: str, calibration: Callable[[], torch.Tensor],
                 cache_dir: Path, plan: ThreadPlan, build: bool = True) -> None:
        import openvino as ov

        self._model = _convert(source, precision, calibration, cache_dir / ir_folder(precision), build)
        self._core = ov.Core()
        self._config = compile_config(self._core, precision, plan.threads, cache_dir)
        self._rgb_uint8 = _Compiled(self._core, with_rgb_uint8_input(self._model, source.input_spec), self._config)
        self._float: Optional[_Compiled] = None
        self._float_lock = threading.Lock()
        self.labels = source.labels
        self.model_id = source.model_id
        self.input_spec = source.input_spec
        self.backend, self.precision = "openvino", precision
        self.description = f"openvino {precision}"

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits (float32) for a normalized float NCHW batch, or for uint8 NHWC RGB crops."""
        return self.predict_with_features(batch)[0]

    def predict_with_features(self, batch: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(logits, features), float32, from one inference (features None for a model converted without them)."""
        compiled = self._rgb_uint8 if batch.dtype == torch.uint8 else self._float_model()
        return split(compiled.infer(np.ascontiguousarray(batch.numpy())), len(self.labels))

    def _float_model(self) -> _Compiled:
        """The float-input model, compiled on first use (the stream never needs it, so a start does not wait)."""
        with self._float_lock:
            if self._float is None:
                self._float = _Compiled(self._core, self._model, self._config)
            return self._float
