"""Torch int8: post-training static quantization with PT2E (X86 inductor quantizer), compiled ahead of time by
AOTInductor into one package (.pt2) that takes uint8 RGB crops, for any batch size up to MAX_BATCH.

The package is built once (in a child process, about a minute on 2 cores), checked, and renamed into place; later
starts load it in about a second, with no compilation. It is native code for this CPU's instruction set and this
torch version, so its file name carries a key of both (see RunnerFactory.int8_package). Its one output is the
logits followed by the penultimate features (inference/features.py).
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import tempfile
import warnings
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import torch

from inference.artifacts import (
    first_line,
    partial_prefix,
    quarantine,
    seal,
    staged,
    unsealed_reason,
)
from inference.backends.choice import NotCached
from inference.backends.inductor import rgb_uint8_module
from inference.features import split
from inference.model import TorchClassifier
from inference.preprocess import InputSpec, rgb_uint8_crops
from inference.threads import ThreadPlan, TorchThreadPin

log = logging.getLogger(__name__)

EXPORT_BATCH = 8
MAX_BATCH = 64
"""The largest batch the package takes (config's batching.max_batch is at most 64); larger ones are split."""
CHECK_FRAMES = 16
MIN_PACKAGE_AGREEMENT = 0.75
"""Top-1 agreement of the compiled package with the quantized program it was compiled from, below which the
package is refused (a miscompiled package, not a quantization error: `auto` judges that against fp32)."""
INDUCTOR_OPTIONS = {"freezing": True}
"""Without freezing the quantized ops silently run as dequantize + fp32 convolutions (pytorch/ao#4566)."""


def _split_relu_forward(self, x: torch.Tensor) -> torch.Tensor:
    """torchvision's BasicBlock.forward with its second ReLU call on a module of its own."""
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    return self.relu_out(self.bn2(self.conv2(out)) + identity)


def quantizable_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of a ResNet whose blocks have separate ReLU modules (same weights, same outputs): torchvision's
    BasicBlock calls one ReLU module twice, and the quantizer needs one module per call."""
    from torchvision.models.resnet import BasicBlock

    split = type("_SplitReluBlock", (BasicBlock,), {"forward": _split_relu_forward})
    model = copy.deepcopy(module).eval()
    for block in model.modules():
        if type(block) is BasicBlock:
            block.__class__ = split
            block.relu_out = torch.nn.ReLU()
    return model


def _dynamic_batch() -> tuple[dict[int, torch.export.Dim]]:
    return ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)


def quantize(module: torch.nn.Module, calibration: torch.Tensor) -> torch.export.ExportedProgram:
    """Export, calibrate on `calibration` (N, 3, H, W) and convert to an int8 program with a dynamic batch."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    example = (calibration[:EXPORT_BATCH].contiguous(memory_format=torch.channels_last),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.export.export(quantizable_copy(module), example, dynamic_shapes=_dynamic_batch()).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for start in range(0, len(calibration), 16):
                prepared(calibration[start:start + 16])
        converted = convert_pt2e(prepared)
        return torch.export.export(converted, example, dynamic_shapes=_dynamic_batch())


def build_package(module: torch.nn.Module, spec: InputSpec, calibration: torch.Tensor, target: Path,
                  threads: int, num_labels: int) -> None:
    """Quantize `module`, put the uint8 input normalization in front, compile it ahead of time with `threads`
    threads and write the package to `target`, renamed into place only after it loaded and agreed (on the top-1
    of the first `num_labels` outputs, the logits)."""
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer  # noqa: F401  (int8 fusion passes)

    torch.set_num_threads(threads)
    program = quantize(module, calibration)
    wrapped = rgb_uint8_module(program.module(), spec)
    crops = rgb_uint8_crops(calibration[:CHECK_FRAMES], spec)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.export.export(wrapped, (crops[:EXPORT_BATCH],), dynamic_shapes=_dynamic_batch())
        expected = wrapped(crops)[:, :num_labels].argmax(1)
        with staged(Path(target)) as partial:
            torch._inductor.aoti_compile_and_package(exported, package_path=str(partial),
                                                     inductor_configs=INDUCTOR_OPTIONS)
            _check(load_package(partial, lanes=1), crops, expected, num_labels)
        seal(Path(target))


def _check(compiled: Callable, crops: torch.Tensor, expected: torch.Tensor, num_labels: int) -> None:
    with torch.no_grad():
        logits = compiled(crops)[:, :num_labels]
    agreement = float((logits.argmax(1) == expected).float().mean())
    if not torch.isfinite(logits).all() or agreement < MIN_PACKAGE_AGREEMENT:
        raise ValueError(f"the compiled int8 package disagrees with its program (top-1 agreement {agreement:.0%})")


def _build_in_child(module: torch.nn.Module, spec: InputSpec, calibration: torch.Tensor, target: str,
                    threads: int, num_labels: int) -> None:
    """build_package with inductor's scratch files in a private folder that goes away with the build."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{partial_prefix()}inductor-", dir=Path(target).parent) as scratch:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = scratch
        build_package(module, spec, calibration, Path(target), threads, num_labels)


def build_package_isolated(module: torch.nn.Module, spec: InputSpec, calibration: torch.Tensor, target: Path,
                           threads: int, num_labels: int) -> None:
    """build_package in a spawned process, so the memory export and compilation take (over 1 GB) goes back to
    the system, and a crash of the compiler cannot take the caller down."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        pool.submit(_build_in_child, module, spec, calibration, str(target), threads, num_labels).result()


class LoadedPackage:
    """A package loaded by torch's native AOTInductor loader, called with one uint8 batch.

    (torch._inductor.aoti_load_package wraps the same loader, but importing torch._inductor takes a second of a
    start: it imports torch._dynamo.)"""

    def __init__(self, path: Path, lanes: int) -> None:
        self._loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, max(1, lanes), -1)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self._loader.boxed_run([batch])[0]


def load_package(path: Path, lanes: int, sealed: bool = False) -> LoadedPackage:
    """The compiled package at `path`, able to run `lanes` calls at once. With `sealed`, only when it is exactly
    the package that was checked when it was built (the native loader dies of SIGBUS on a truncated library)."""
    reason = unsealed_reason(path) if sealed else None
    if reason is None and not zipfile.is_zipfile(path):
        reason = "not a .pt2 package (truncated or overwritten)"
    if reason is not None:
        raise ValueError(reason)
    return LoadedPackage(path, lanes)


def cached_package(path: Path, lanes: int) -> Optional[LoadedPackage]:
    """The package built by an earlier start, or None (a damaged one goes to quarantine)."""
    if not path.is_file():
        return None
    try:
        return load_package(path, lanes, sealed=True)
    except Exception as exc:
        quarantine(path, first_line(exc))
        return None


def int8_kernel_calls(path: Path) -> dict[str, int]:
    """How many oneDNN int8 convolution and linear calls the package's compiled code makes (for tests and bench:
    a package without them runs its int8 program as dequantize + fp32)."""
    counts = {"qconv": 0, "qlinear": 0}
    with zipfile.ZipFile(path) as package:
        for name in (n for n in package.namelist() if n.endswith(".wrapper.cpp")):
            code = package.read(name).decode(errors="replace")
            counts["qconv"] += code.count("aoti_torch_cpu__qconv")
            counts["qlinear"] += code.count("aoti_torch_cpu__qlinear")
    return counts


class Int8Runner:
    """The int8 package of a classifier: same labels, input and model id.

    The pipeline hands it uint8 NHWC RGB crops (`takes_rgb_uint8`), normalized inside the compiled code. Normalized
    float batches (agreement checks, `auto`, bench) are turned back into the crops they were made from first."""

    takes_rgb_uint8 = True

    def __init__(self, source: TorchClassifier, calibration: Callable[[], torch.Tensor], package: Path,
                 plan: ThreadPlan, isolate_builds: bool = True, build: bool = True) -> None:
        compiled = cached_package(package, plan.lanes)
        if compiled is None:
            if not build:
                raise NotCached(f"no torch int8 package at {package}")
            log.info("building the torch int8 package (quantize, compile ahead of time; once, cached in %s)",
                     package.parent)
            builder = build_package_isolated if isolate_builds else build_package
            builder(source.features_module() or source.module, source.input_spec, calibration(), package,
                    plan.threads_per_lane, len(source.labels))
            compiled = load_package(package, plan.lanes, sealed=True)
        self._compiled = compiled
        self._threads = TorchThreadPin()
        self.package = package
        self.labels = source.labels
        self.model_id = source.model_id
        self.input_spec = source.input_spec
        self.backend, self.precision = "torch", "int8"
        self.description = "torch int8 (PT2E, AOTInductor package)"

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits (float32) for uint8 NHWC RGB crops, or for a normalized float NCHW batch."""
        return self.predict_with_features(batch)[0]

    def predict_with_features(self, batch: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(logits, features), float32, from one call of the package (features None for a package without them)."""
        self._threads.apply()
        if batch.dtype != torch.uint8:
            batch = rgb_uint8_crops(batch, self.input_spec)
        with torch.no_grad():
            output = torch.cat([self._compiled(batch[i:i + MAX_BATCH].contiguous()).float()
                                for i in range(0, len(batch), MAX_BATCH)])
        return split(output, len(self.labels))
