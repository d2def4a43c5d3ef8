"""`streamrec model export`: ONNX and TorchScript files that leave nothing else behind and that other users can
read; a Triton model repository whose ONNX takes uint8 crops and answers like the local model."""

import stat

import numpy as np
import pytest

from capture.catalog_dataset import render_class
from inference.bundle import load_bundle
from inference.export import export_classifier
from inference.preprocess import BatchPreprocessor
from inference.triton_export import TritonSettings, export_triton, model_name
from tests.conftest import run_cli

onnxruntime = pytest.importorskip("onnxruntime")


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def repository(tiny_bundle, tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    folder = export_triton(load_bundle(tiny_bundle).to_classifier(), repo, settings=TritonSettings(max_batch=16))
    return repo, folder


@pytest.mark.parametrize("fmt, name", [("onnx", "model.onnx"), ("torchscript", "model.pt")])
def test_an_export_leaves_only_the_model_and_its_labels_readable_by_others(tiny_bundle, tmp_path, fmt, name):
    export_classifier(load_bundle(tiny_bundle).to_classifier(), fmt, tmp_path / name)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted([name, name.rsplit(".", 1)[0] + ".labels.txt"])
    assert all(mode(p) & 0o044 == 0o044 for p in tmp_path.iterdir())


def test_the_repository_holds_exactly_one_model_folder_in_tritons_layout(repository, tiny_bundle):
    repo, folder = repository
    files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    assert files == [f"{folder.name}/1/model.onnx", f"{folder.name}/config.pbtxt", f"{folder.name}/labels.txt"]
    assert all(mode(p) & 0o044 == 0o044 for p in repo.rglob("*"))
    assert (folder / "labels.txt").read_text().splitlines() == list(load_bundle(tiny_bundle).labels)


def test_the_config_batches_dynamically_rejects_when_full_and_names_the_labels(repository, tiny_bundle):
    _repo, folder = repository
    config = (folder / "config.pbtxt").read_text()
    labels = load_bundle(tiny_bundle).labels
    crop = load_bundle(tiny_bundle).input.crop
    assert f'name: "{folder.name}"' in config and 'platform: "onnxruntime_onnx"' in config
    assert "max_batch_size: 16" in config and "dynamic_batching {" in config and "timeout_action: REJECT" in config
    assert "data_type: TYPE_UINT8" in config and f"dims: [ {crop}, {crop}, 3 ]" in config
    assert f"dims: [ {len(labels)} ]" in config and 'label_filename: "labels.txt"' in config
    assert "kind: KIND_CPU" in config and config.count("{") == config.count("}")


def test_the_onnx_takes_uint8_crops_and_gives_the_local_models_top1_at_any_batch(repository, tiny_bundle):
    _repo, folder = repository
    classifier = load_bundle(tiny_bundle).to_classifier()
    frames = [image for label in range(1, 11) for image in render_class(label, 1, seed=5, out_size=224)]
    floats = BatchPreprocessor(classifier.input_spec, len(frames))(frames).clone()
    crops = BatchPreprocessor(classifier.input_spec, len(frames), rgb_uint8=True)(frames).numpy().copy()
    session = onnxruntime.InferenceSession(str(folder / "1" / "model.onnx"))
    assert [(i.name, i.type) for i in session.get_inputs()] == [("input", "tensor(uint8)")]
    expected = classifier.predict(floats).argmax(1).numpy()
    for size in (1, 3, len(frames)):
        logits = session.run(["logits"], {"input": crops[:size]})[0]
        np.testing.assert_array_equal(logits.argmax(1), expected[:size])


def test_model_names_are_folder_names():
    assert model_name("resnet18-imagenet1k-v1") == "resnet18-imagenet1k-v1"
    assert model_name("shop A/products v2") == "shop-A-products-v2" and model_name("//") == "streamrec"


def test_export_cli_writes_a_triton_repository_and_replaces_an_older_export(tiny_bundle, tmp_path):
    for _ in range(2):
        done = run_cli("model", "export", "--model", str(tiny_bundle), "--format", "triton", "--out",
                       str(tmp_path / "repo"), "--name", "products", "--max-batch", "8", timeout=180)
        assert done.returncode == 0, done.stderr
    assert "tritonserver --model-repository" in done.stdout
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["products"]
    assert "max_batch_size: 8" in (tmp_path / "repo" / "products" / "config.pbtxt").read_text()
    refused = run_cli("model", "export", "--model", str(tiny_bundle), "--format", "triton", "--out",
                      str(tmp_path / "repo"), "--max-batch", "0")
    assert refused.returncode == 2 and "must be 1 or more" in refused.stderr
