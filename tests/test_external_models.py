"""ONNX and TorchScript models: export any torch model, load it back, same top-1, same wire format."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from capture.catalog_dataset import render_class
from config.schema import ModelConfig
from inference.bundle import load_bundle
from inference.errors import ModelError
from inference.export import export_classifier, export_onnx, labels_path_for
from inference.external import METADATA_KEY, metadata_for
from inference.loader import load_classifier
from inference.preprocess import BatchPreprocessor
from stream.pipeline.app import Pipeline
from tests.conftest import make_config, run_cli
from tests.fakes import run_until_results

pytest.importorskip("onnxruntime")


def catalog_frames() -> list[np.ndarray]:
    return [image for label in range(1, 11) for image in render_class(label, 2, seed=77, out_size=224)]


def top1(classifier, frames) -> list[int]:
    batch = BatchPreprocessor(classifier.input_spec, len(frames))(frames)
    return classifier.predict(batch).argmax(1).tolist()


@pytest.fixture(scope="module")
def exported(tiny_bundle, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("exported")
    classifier = load_bundle(tiny_bundle).to_classifier()
    return {fmt: export_classifier(classifier, fmt, folder / f"tiny.{'onnx' if fmt == 'onnx' else 'pt'}")[0]
            for fmt in ("onnx", "torchscript")}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_model_gives_the_same_top1_as_the_original(tiny_bundle, exported, fmt):
    original = load_bundle(tiny_bundle).to_classifier()
    path = exported[fmt]
    loaded = load_classifier(ModelConfig(spec=f"{fmt}:{path}", labels=labels_path_for(path)), threads=2)
    frames = catalog_frames()
    assert loaded.labels == original.labels and loaded.input_spec == original.input_spec
    assert top1(loaded, frames) == top1(original, frames)


def test_the_onnx_export_names_its_outputs_logits_then_features(exported):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
    assert [output.name for output in session.get_outputs()] == ["logits", "features"]


def test_the_torchscript_export_returns_logits_and_features_as_a_tuple(tiny_bundle, exported):
    bundle = load_bundle(tiny_bundle)
    output = torch.jit.load(str(exported["torchscript"]))(torch.zeros(2, 3, bundle.input.crop, bundle.input.crop))
    assert isinstance(output, tuple) and [tuple(t.shape) for t in output] == [(2, len(bundle.labels)), (2, 512)]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_exported_model_gives_the_originals_logits_and_features(tiny_bundle, exported, fmt):
    original = load_bundle(tiny_bundle).to_classifier()
    path = exported[fmt]
    loaded = load_classifier(ModelConfig(spec=f"{fmt}:{path}", labels=labels_path_for(path)), threads=2)
    batch = BatchPreprocessor(original.input_spec, 8)(catalog_frames()[:8])
    logits, features = loaded.predict_with_features(batch)
    expected_logits, expected_features = original.predict_with_features(batch)
    torch.testing.assert_close(features, expected_features, rtol=0, atol=1e-4)
    torch.testing.assert_close(logits, expected_logits, rtol=0, atol=1e-4)
    torch.testing.assert_close(loaded.predict(batch), logits, rtol=0, atol=0)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_export_made_before_the_features_loads_and_gives_no_features(tiny_bundle, tmp_path, fmt):
    original = load_bundle(tiny_bundle).to_classifier()
    crop = original.input_spec.crop
    example = torch.zeros(2, 3, crop, crop)
    metadata = metadata_for(original.labels, original.input_spec, original.model_id)
    path = tmp_path / f"old.{'onnx' if fmt == 'onnx' else 'pt'}"
    if fmt == "onnx":  # logits only, as exports were written before
        export_onnx(original.module.eval(), example, path, metadata)
    else:
        traced = torch.jit.trace(original.module.eval(), example)
        torch.jit.save(traced, str(path), _extra_files={f"{METADATA_KEY}.json": json.dumps(metadata)})
    loaded = load_classifier(ModelConfig(spec=f"{fmt}:{path}"), threads=2)
    batch = BatchPreprocessor(original.input_spec, 8)(catalog_frames()[:8])
    logits, features = loaded.predict_with_features(batch)
    assert features is None
    torch.testing.assert_close(logits, original.predict(batch), rtol=0, atol=1e-4)


def test_a_torchscript_model_whose_second_output_is_not_features_is_refused(tmp_path):
    class LogitsAndMap(torch.nn.Module):
        def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return batch.mean((2, 3)), batch

    path = tmp_path / "two.pt"
    torch.jit.save(torch.jit.trace(LogitsAndMap(), torch.zeros(1, 3, 32, 32)), str(path))
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    with pytest.raises(ModelError, match="second output is \\(1, 3, 32, 32\\)"):
        load_classifier(ModelConfig(spec=f"torchscript:{path}", labels=labels, input_size=32))


def test_export_cli_writes_model_and_labels(tiny_bundle, tmp_path):
    out = tmp_path / "shop.onnx"
    done = run_cli("model", "export", "--model", str(tiny_bundle), "--format", "onnx", "--out", str(out), timeout=180)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and labels_path_for(out).read_text().splitlines()[1] == "cola can"
    assert f"--model onnx:{out}" in done.stdout


def test_labels_file_of_the_wrong_length_is_refused(exported, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("one\ntwo\n")
    with pytest.raises(ModelError, match="2 labels"):
        load_classifier(ModelConfig(spec=f"torchscript:{exported['torchscript']}", labels=labels))


def test_external_model_without_labels_or_metadata_is_refused(tmp_path):
    module = torch.jit.trace(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 3)).eval(),
                             torch.zeros(1, 3, 8, 8))
    path = tmp_path / "bare.pt"
    torch.jit.save(module, str(path))
    with pytest.raises(ModelError, match="needs a labels file"):
        load_classifier(ModelConfig(spec=f"torchscript:{path}", input_size=32))


def test_missing_onnx_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_classifier(ModelConfig(spec=f"onnx:{tmp_path / 'none.onnx'}"))


@pytest.mark.parametrize("kind", ["bundle", "onnx", "torchscript"])
def test_each_model_kind_runs_in_the_pipeline_and_publishes_its_labels(tiny_bundle, exported, kind):
    spec = str(tiny_bundle) if kind == "bundle" else f"{kind}:{exported[kind]}"
    labels = None if kind == "bundle" else str(labels_path_for(exported[kind]))
    config = make_config([{"id": "lane", "source": "synthetic:lane", "seed": 1}], model={"spec": spec, "labels": labels})
    classifier = load_classifier(config.model, threads=2)
    pipeline = Pipeline(config, classifier, threading.Event())
    results = run_until_results(pipeline, 5).of_type("result")
    assert len(results) >= 5
    bundle_labels = load_bundle(tiny_bundle).labels
    assert all(entry["label"] == bundle_labels[entry["index"]] for r in results for entry in r["topk"])
    assert {r["model"] for r in results} == {classifier.model_id}
