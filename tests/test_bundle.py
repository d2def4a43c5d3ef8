"""Model bundles: what finetune writes and run loads, refused with a clear message when damaged."""

import json
import shutil

import pytest
import torch

from inference.bundle import Bundle, load_bundle, save_bundle
from inference.errors import ModelError
from inference.preprocess import InputSpec
from tests.conftest import cli_env, run_cli


def small_bundle(labels=("a", "b", "c"), **metadata) -> Bundle:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    state = resnet18(num_classes=len(labels)).state_dict()
    return Bundle(state, tuple(labels), InputSpec.for_crop(64), "small-1234", **metadata)


def test_bundle_round_trip_keeps_labels_input_metrics_and_outputs(tmp_path):
    bundle = small_bundle(metrics={"val_top1": 0.9}, provenance={"torch": torch.__version__, "dataset": {"classes": 3}})
    loaded = load_bundle(save_bundle(bundle, tmp_path / "m.bundle"))
    assert loaded.labels == ("a", "b", "c") and loaded.input == InputSpec.for_crop(64)
    assert loaded.metrics == {"val_top1": 0.9} and loaded.provenance["dataset"] == {"classes": 3}
    assert isinstance(loaded.provenance["torch"], str)
    batch = torch.randn(2, 3, 64, 64)
    assert torch.equal(bundle.to_classifier().predict(batch), loaded.to_classifier().predict(batch))


def test_truncated_bundle_is_refused(tmp_path):
    path = save_bundle(small_bundle(), tmp_path / "m.bundle")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError, match="damaged or truncated"):
        load_bundle(path)


def test_labels_that_do_not_match_the_head_are_refused(tmp_path):
    bundle = small_bundle()
    wrong = Bundle(bundle.state_dict, ("a", "b"), bundle.input, bundle.model_id)
    with pytest.raises(ModelError, match="2 labels do not match the model head's 3 outputs"):
        save_bundle(wrong, tmp_path / "wrong.bundle")  # checked as it is written: it reads back like any bundle
    assert not list(tmp_path.iterdir())


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ModelError, match="not a streamrec model bundle"):
        load_bundle(path)


def test_run_with_a_truncated_bundle_exits_78(tmp_path, tiny_bundle):
    broken = tmp_path / "broken.bundle"
    broken.write_bytes(tiny_bundle.read_bytes()[:5000])
    done = run_cli("run", "--headless", "--source", "synthetic", "--model", str(broken), "--duration", "5",
                   "--publish", "tcp://127.0.0.1:*", env=cli_env())
    assert done.returncode == 78
    assert "damaged or truncated" in done.stderr and "Traceback" not in done.stderr


def test_run_with_a_missing_model_file_exits_78(tmp_path):
    done = run_cli("run", "--headless", "--source", "synthetic", "--model", str(tmp_path / "none.bundle"), "--duration", "5")
    assert done.returncode == 78 and "not found" in done.stderr


def test_model_info_prints_labels_input_metrics_and_provenance(tiny_bundle):
    done = run_cli("model", "info", str(tiny_bundle))
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["labels"][0] == "empty" and "cola can" in info["labels"]
    assert info["input"]["crop"] == 48
    assert 0 < info["metrics"]["val_top1"] <= 1 and info["metrics"]["history"]
    assert info["provenance"]["base_weights"] and info["provenance"]["created"]


def test_copied_bundle_keeps_its_model_id(tmp_path, tiny_bundle):
    copy = tmp_path / "copy.bundle"
    shutil.copy(tiny_bundle, copy)
    assert load_bundle(copy).model_id == load_bundle(tiny_bundle).model_id
    assert load_bundle(copy).model_id.startswith("tiny-test-")
