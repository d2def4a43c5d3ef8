"""Torch int8: post-training static quantization with PT2E (X86 inductor quantizer), compiled by inductor.

The quantized program is cached on disk, so later starts skip export and calibration.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from torchvision.models.resnet import BasicBlock

from inference.backends.inductor import CompiledBuckets, rgb_uint8_module
from inference.model import TorchClassifier
from inference.threads import TorchThreadPin

log = logging.getLogger(__name__)

EXPORT_BATCH = 8
MAX_BATCH = 256


class _SplitReluBlock(BasicBlock):
    """torchvision's BasicBlock calls one ReLU module twice; the quantizer needs one module per call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu_out(self.bn2(self.conv2(out)) + identity)


def quantizable_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of a ResNet whose blocks have separate ReLU modules (same weights, same outputs)."""
    model = copy.deepcopy(module).eval()
    for block in model.modules():
        if type(block) is BasicBlock:
            block.__class__ = _SplitReluBlock
            block.relu_out = torch.nn.ReLU()
    return model


def quantize(module: torch.nn.Module, calibration: torch.Tensor) -> torch.export.ExportedProgram:
    """Export, calibrate on `calibration` (N, 3, H, W) and convert to an int8 program with a dynamic batch."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    example = (calibration[:EXPORT_BATCH].contiguous(memory_format=torch.channels_last),)
    dynamic = ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.export.export(quantizable_copy(module), example, dynamic_shapes=dynamic).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for start in range(0, len(calibration), 16):
                prepared(calibration[start:start + 16])
        converted = convert_pt2e(prepared)
        return torch.export.export(converted, example, dynamic_shapes=dynamic)


def quantize_to_file(module: torch.nn.Module, calibration: torch.Tensor, cache_file: str) -> None:
    """Quantize and save the program atomically (runs in a child process; see load_or_quantize)."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    program = quantize(module, calibration)
    target = Path(cache_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix="partial-", suffix=".pt2", dir=target.parent)
    os.close(handle)
    try:
        torch.export.save(program, partial)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)


def load_or_quantize(module: torch.nn.Module, calibration: torch.Tensor, cache_file: Path) -> torch.export.ExportedProgram:
    """The int8 program from `cache_file`, quantizing it first (in a child process) when it is not there.

    Export and calibration run in a spawned process so the memory they take (several hundred MB)
    goes back to the system when they end."""
    import torchao  # noqa: F401  (registers the quantized ops a saved program refers to)

    if cache_file.is_file():
        try:
            return torch.export.load(str(cache_file))
        except Exception as exc:
            log.warning("cached int8 model %s unusable (%s); quantizing again", cache_file, exc)
    log.info("quantizing to int8 on %d calibration frames (once; cached in %s)", len(calibration), cache_file)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        pool.submit(quantize_to_file, module, calibration, str(cache_file)).result()
    return torch.export.load(str(cache_file))


def batch_buckets(max_batch: int) -> tuple[int, ...]:
    """Batch sizes compiled ahead: powers of two up to max_batch, and max_batch itself."""
    sizes = {1, max_batch}
    size = 2
    while size < max_batch:
        sizes.add(size)
        size *= 2
    return tuple(sorted(sizes))


class Int8Runner:
    """An int8 program compiled by inductor for a few static batch sizes; a batch is padded to the next one.

    (Inductor folds the int8 weight packing into the compiled code only for static shapes; padding costs
    at most half a bucket of extra compute.) Same labels, input and model id as the source classifier.

    The pipeline hands it uint8 NHWC RGB crops (`takes_rgb_uint8`), normalized inside the compiled graph; those
    buckets are compiled at start-up. Normalized float batches (calibration, agreement, `auto`, raw speed) run a
    second compiled copy whose buckets compile on their first use, so a start that never needs them (the
    stream, with a cached decision) does not wait for them."""

    takes_rgb_uint8 = True

    def __init__(self, source: TorchClassifier, calibration: torch.Tensor, cache_file: Path, max_batch: int = 8) -> None:
        program = load_or_quantize(source.module, calibration, cache_file)
        crop = source.input_spec.crop
        self._threads = TorchThreadPin()
        self._buckets = batch_buckets(max_batch)
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, len(self._buckets) + 2)
        self._rgb_uint8 = CompiledBuckets(rgb_uint8_module(program.module(), source.input_spec),
                                          lambda size: torch.zeros((size, crop, crop, 3), dtype=torch.uint8))
        self._float = CompiledBuckets(program.module(), lambda size: torch.zeros((size, 3, crop, crop)).contiguous(
            memory_format=torch.channels_last))
        self.labels = source.labels
        self.model_id = source.model_id
        self.input_spec = source.input_spec
        self.backend, self.precision = "torch", "int8"
        self.description = "torch int8 (PT2E, inductor)"
        for size in self._buckets:  # now, not on the first camera frames
            self._rgb_uint8.compile(size)

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits (float32) for a normalized float NCHW batch, or for uint8 NHWC RGB crops."""
        self._threads.apply()
        count = len(batch)
        size = next((b for b in self._buckets if b >= count), count)
        if size != count:
            batch = torch.cat([batch, batch.new_zeros((size - count, *batch.shape[1:]))])
        if batch.dtype == torch.uint8:
            return self._rgb_uint8(batch.contiguous())[:count].float()
        return self._float(batch.contiguous(memory_format=torch.channels_last))[:count].float()
