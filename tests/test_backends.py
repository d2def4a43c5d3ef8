"""Backends and precisions: same top-1 as fp32, same wire format, clear errors, auto picks and remembers."""

import threading

import pytest
import torch

from capture.catalog_dataset import render_class
from config.schema import ModelConfig
from inference.backends import choice as choice_module
from inference.backends.auto import Trial, pick
from inference.backends.choice import BackendUnavailable, Choice, require, why_unavailable
from inference.backends.select import RunnerFactory, accelerate
from inference.backends.torch_int8 import int8_kernel_calls
from inference.bundle import load_bundle
from inference.model import takes_rgb_uint8
from inference.preprocess import BatchPreprocessor
from inference.threads import ThreadPlan
from stream.pipeline.app import Pipeline
from stream.service.calibration import rendered_frames
from tests.conftest import make_config
from tests.fakes import run_until_results
from tests.test_pipeline import assert_valid_result

CHOICES = [Choice(b, p) for b in ("torch", "openvino") for p in ("fp32", "bf16", "int8")]


@pytest.fixture(scope="module")
def factory(tiny_bundle, streamrec_cache) -> RunnerFactory:
    """Runners of the tiny bundle, cached where the demo and bench tests find them again."""
    classifier = load_bundle(tiny_bundle).to_classifier()
    return RunnerFactory(classifier, rendered_frames, streamrec_cache / "models", plan=ThreadPlan(1, 2), batch_size=8)


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    return [image for label in range(1, 11) for image in render_class(label, 4, seed=55, out_size=224)]


def top1(classifier, images) -> torch.Tensor:
    return classifier.predict(BatchPreprocessor(classifier.input_spec, len(images))(images)).argmax(1)


@pytest.mark.parametrize("choice", CHOICES, ids=str)
def test_each_available_path_agrees_with_fp32(factory, frames, choice):
    reason = why_unavailable(choice)
    if reason:
        pytest.skip(reason)
    runner = factory(choice)
    agreement = float((top1(runner, frames) == top1(factory.source, frames)).float().mean())
    assert runner.labels == factory.source.labels and runner.model_id == factory.source.model_id
    assert agreement >= 0.95, f"{choice}: {agreement:.1%}"  # a tiny 48 px model has small margins; the bench uses 99% on trained models


@pytest.mark.parametrize("choice", [Choice("torch", "int8"), Choice("openvino", "int8")], ids=str)
def test_fast_path_publishes_the_same_wire_format(factory, choice):
    if why_unavailable(choice):
        pytest.skip(why_unavailable(choice))
    runner = factory(choice)
    config = make_config([{"id": "lane", "source": "synthetic:lane"}])
    pipeline = Pipeline(config, runner, threading.Event())
    results = run_until_results(pipeline, 5, 30).of_type("result")
    assert len(results) >= 5
    for payload in results:
        assert_valid_result(payload, runner.labels)


def test_openvino_lets_a_free_model_thread_take_over_a_busy_ones_work(factory, tmp_path):
    if why_unavailable(Choice("openvino", "int8")):
        pytest.skip(why_unavailable(Choice("openvino", "int8")))
    import openvino as ov

    from inference.backends.openvino_runner import compile_config

    runner = factory(Choice("openvino", "int8"))
    assert all(str(path.compiled.get_property("TBB_PARTITIONER")).endswith("AUTO") for path in (runner._float_model(), runner._rgb_uint8))
    config = compile_config(ov.Core(), "int8", 2, tmp_path)
    assert config["CACHE_DIR"] == str(tmp_path / "blobs" / "tbb-auto") and config["INFERENCE_NUM_THREADS"] == 2


@pytest.mark.parametrize("choice", [Choice("openvino", "fp32"), Choice("openvino", "int8"), Choice("torch", "int8")], ids=str)
def test_a_model_that_normalizes_in_its_graph_gives_the_same_logits_for_rgb_crops_as_for_normalized_floats(
        factory, frames, choice):
    if why_unavailable(choice):
        pytest.skip(why_unavailable(choice))
    runner = factory(choice)
    assert takes_rgb_uint8(runner) and not takes_rgb_uint8(factory.source)
    spec = runner.input_spec
    for start in range(0, len(frames), 8):
        batch = frames[start:start + 8]
        from_floats = runner.predict(BatchPreprocessor(spec, len(batch))(batch))
        from_crops = runner.predict(BatchPreprocessor(spec, len(batch), rgb_uint8=True)(batch))
        torch.testing.assert_close(from_crops, from_floats, rtol=0, atol=1e-4)


def test_openvino_without_the_partitioner_setting_keeps_its_defaults(tmp_path):
    from inference.backends.openvino_runner import compile_config

    class OlderCore:
        def get_property(self, device, name):
            return ["INFERENCE_NUM_THREADS", "PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT"]

    config = compile_config(OlderCore(), "bf16", 2, tmp_path)
    assert "TBB_PARTITIONER" not in config and config["CACHE_DIR"] == str(tmp_path / "blobs")
    assert config["INFERENCE_PRECISION_HINT"] == "bf16"


@pytest.mark.parametrize("choice", [Choice("torch", "fp32"), Choice("torch", "int8"), Choice("openvino", "int8")], ids=str)
def test_model_lanes_calling_at_once_get_the_logits_of_calls_one_after_another(tiny_bundle, streamrec_cache, frames, choice):
    """The worker's model lanes call one runner from several threads at once (OpenVINO's take turns)."""
    if why_unavailable(choice):
        pytest.skip(why_unavailable(choice))
    classifier = load_bundle(tiny_bundle).to_classifier()
    runner = RunnerFactory(classifier, rendered_frames, streamrec_cache / "models", ThreadPlan(2, 1), 8)(choice)
    batches = [BatchPreprocessor(runner.input_spec, 8)(frames[i:i + 8]).clone() for i in range(0, 40, 8)]
    alone = [runner.predict(batch) for batch in batches]
    together: dict[int, list[torch.Tensor]] = {}

    def lane(index: int) -> None:
        together[index] = [runner.predict(batch) for batch in batches[index:] + batches[:index]]

    lanes = [threading.Thread(target=lane, args=(i,)) for i in range(2)]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join(120)
    for index, outputs in together.items():
        for output, expected in zip(outputs, alone[index:] + alone[:index]):
            torch.testing.assert_close(output, expected, rtol=0, atol=1e-5)
    assert len(together) == 2


def test_int8_batches_of_any_size_keep_their_length(factory):
    if why_unavailable(Choice("torch", "int8")):
        pytest.skip(why_unavailable(Choice("torch", "int8")))
    runner = factory(Choice("torch", "int8"))
    crop = runner.input_spec.crop
    assert [runner.predict(torch.zeros(n, 3, crop, crop)).shape[0] for n in (1, 3, 5, 8, 70)] == [1, 3, 5, 8, 70]


def test_int8_runs_in_a_thread_whose_torch_thread_count_differs(factory):
    """A new thread may start with another torch thread count than the package was built for (OpenMP/MKL
    defaults); the runner gives it the pinned count, and the logits do not change."""
    if why_unavailable(Choice("torch", "int8")):
        pytest.skip(why_unavailable(Choice("torch", "int8")))
    runner = factory(Choice("torch", "int8"))
    pinned = torch.get_num_threads()
    crops = torch.randint(0, 255, (8, runner.input_spec.crop, runner.input_spec.crop, 3), dtype=torch.uint8)
    expected = runner.predict(crops)
    outcome = {}

    def lane() -> None:
        torch.set_num_threads(pinned % 2 + 1)
        outcome["logits"] = runner.predict(crops)
        outcome["threads"] = torch.get_num_threads()

    thread = threading.Thread(target=lane)
    thread.start()
    thread.join(60)
    assert outcome["threads"] == pinned
    torch.testing.assert_close(outcome["logits"], expected, rtol=0, atol=1e-5)


def test_int8_runs_int8_kernels_not_dequantize_and_fp32(factory):
    """Without frozen weights and torchao's x86 passes, inductor silently lowers an int8 program to dequantize +
    fp32 convolution (no faster than fp32); the package's code calls oneDNN's int8 kernels for every layer."""
    if why_unavailable(Choice("torch", "int8")):
        pytest.skip(why_unavailable(Choice("torch", "int8")))
    runner = factory(Choice("torch", "int8"))
    convolutions = sum(isinstance(m, torch.nn.Conv2d) for m in factory.source.module.modules())
    linears = sum(isinstance(m, torch.nn.Linear) for m in factory.source.module.modules())
    assert int8_kernel_calls(runner.package) == {"qconv": convolutions, "qlinear": linears}


def test_missing_openvino_is_a_clear_error_and_auto_skips_it(monkeypatch):
    monkeypatch.setattr(choice_module, "openvino_installed", lambda: False)
    with pytest.raises(BackendUnavailable, match=r"pip install 'streamrec\[openvino\]'"):
        require(Choice("openvino", "fp32"))
    assert "not installed" in why_unavailable(Choice("openvino", "int8"))


def test_bf16_without_native_support_is_refused(monkeypatch):
    monkeypatch.setattr(choice_module, "has_fast_bf16", lambda: False)
    with pytest.raises(BackendUnavailable, match="no native bfloat16"):
        require(Choice("torch", "bf16"))


def test_auto_picks_the_fastest_path_that_agrees():
    trials = [Trial("torch", "fp32", 1.0, 50.0), Trial("torch", "int8", 0.97, 400.0), Trial("torch", "bf16", 1.0, 90.0),
              Trial("openvino", "int8", None, None, "OpenVINO is not installed")]
    assert pick(trials, 0.99).choice == Choice("torch", "bf16")
    assert pick(trials, 0.95).choice == Choice("torch", "int8")
    assert pick([Trial("openvino", "fp32", note="failed")], 0.99).choice == Choice("torch", "fp32")


def test_auto_decides_once_and_reuses_the_decision(tiny_bundle, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(choice_module, "openvino_installed", lambda: False)
    monkeypatch.setattr(choice_module, "_importable", lambda module: module != "torchao")
    classifier = load_bundle(tiny_bundle).to_classifier()
    model = ModelConfig(spec=str(tiny_bundle), precision="auto")
    caplog.set_level("INFO")
    first = accelerate(classifier, model, 8, tmp_path, ThreadPlan(1, 2), rendered_frames)
    assert "auto picked" in caplog.text and "torch int8: torch int8 needs torchao" in caplog.text
    caplog.clear()
    second = accelerate(classifier, model, 8, tmp_path, ThreadPlan(1, 2), rendered_frames)
    assert "decided earlier" in caplog.text and "auto picked" not in caplog.text
    assert first.description == second.description and first.description.startswith("torch")


def test_explicit_precision_on_an_external_model_is_refused(tmp_path):
    from tests.fakes import FixedClassifier

    with pytest.raises(BackendUnavailable, match="apply to resnet18 and bundles"):
        accelerate(FixedClassifier(), ModelConfig(precision="int8"), 8, tmp_path, ThreadPlan(1, 2), rendered_frames)
    assert isinstance(accelerate(FixedClassifier(), ModelConfig(), 8, tmp_path, ThreadPlan(1, 2), rendered_frames), FixedClassifier)


def test_run_with_openvino_missing_exits_78(tmp_path, tiny_bundle):
    from tests.conftest import cli_env, run_cli

    fake = tmp_path / "fake" / "openvino"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('openvino blocked for this test')\n")
    config = tmp_path / "c.toml"
    config.write_text(f'[[cameras]]\nid = "c"\nsource = "synthetic"\n[model]\nspec = "{tiny_bundle}"\nbackend = "openvino"\nprecision = "fp32"\n')
    done = run_cli("run", "--config", str(config), "--headless", "--duration", "5", "--publish", "tcp://127.0.0.1:*",
                   env=cli_env(PYTHONPATH=str(fake.parent), STREAMREC_CACHE_DIR=str(tmp_path / "cache")))
    assert done.returncode == 78, done.stderr
    assert "pip install 'streamrec[openvino]'" in done.stderr and "Traceback" not in done.stderr


def test_a_compiled_torch_model_that_fails_to_compile_runs_eagerly_and_moves_inductors_cache_aside(
        tiny_bundle, tmp_path, monkeypatch, caplog):
    """Inductor trusts any kernel in its cache; a damaged one must not stop the stream."""
    from inference.backends.torch_runner import TorchRunner

    inductor = tmp_path / "inductor"
    (inductor / "ab").mkdir(parents=True)
    (inductor / "ab" / "kernel.so").write_bytes(b"")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(inductor))
    classifier = load_bundle(tiny_bundle).to_classifier()
    runner = TorchRunner(classifier, "fp32", compiled=True)

    def broken(_batch):
        raise ImportError(f"{inductor}/ab/kernel.so: file too short")

    runner._module = broken
    batch = BatchPreprocessor(runner.input_spec, 2)([frame for frame in render_class(1, 2, seed=3, out_size=64)])
    caplog.set_level("WARNING")
    torch.testing.assert_close(runner.predict(batch), classifier.predict(batch), rtol=1e-4, atol=1e-4)
    assert "runs eagerly" in caplog.text and "compiled" not in runner.description
    assert not inductor.exists() and any((tmp_path / "quarantine").iterdir())
