"""`streamrec finetune` on small image folders: a usable bundle from good data, clear errors from bad data."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from capture.catalog import PRODUCTS
from capture.scene import SpriteCache, render_sample
from inference.bundle import load_bundle
from inference.preprocess import BatchPreprocessor
from inference.training.dataset import DatasetError, load_image_folder
from tests.conftest import cli_env, run_cli

CLASSES = {"cola": PRODUCTS[0], "crisps": PRODUCTS[6], "milk": PRODUCTS[8]}
SUFFIXES = (".png", ".jpg", ".webp")


def write_dataset(root: Path, per_class: int, seed: int) -> Path:
    sprites = SpriteCache()
    for name, product in CLASSES.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            picture = render_sample(product, np.random.default_rng([seed, i, len(name)]), 96, sprites)
            cv2.imwrite(str(folder / f"{i}{SUFFIXES[i % 3]}"), picture)
    return root


def finetune_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", str(data), "--out", str(out), "--input-size", "48", "--epochs", "4", "--batch-size", "16",
            "--min-steps", "60", *extra]


def test_finetune_takes_its_options_and_writes_a_bundle_named_after_the_folders(tmp_path, empty_torch_home):
    """Options only: how well the default recipe recognizes new pictures is test_finetune_small_sets' forty photos."""
    data = write_dataset(tmp_path / "data", 12, seed=1)
    out = tmp_path / "shop.bundle"
    done = run_cli(*finetune_args(data, out, "--epochs", "2", "--min-steps", "0"),
                   env=cli_env(TORCH_HOME=str(empty_torch_home)), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Training from scratch" in done.stderr and "epoch 2" in done.stderr and "epoch 3" not in done.stderr
    bundle = load_bundle(out)
    assert bundle.labels == ("cola", "crisps", "milk") and bundle.input.crop == 48
    assert bundle.provenance["base_weights"].startswith("none") and bundle.provenance["dataset"]["train_images"] > 0
    assert bundle.metrics["epochs_run"] == 2


def test_finetune_starts_from_imagenet_weights_and_freezes_early_layers(tmp_path, torch_home):
    data = write_dataset(tmp_path / "data", 8, seed=3)
    out = tmp_path / "shop.bundle"
    done = run_cli(*finetune_args(data, out, "--epochs", "1"), env=cli_env(TORCH_HOME=str(torch_home)), timeout=300)
    assert done.returncode == 0, done.stderr
    bundle = load_bundle(out)
    assert bundle.provenance["base_weights"].startswith("resnet18-imagenet1k-v1")
    assert bundle.provenance["frozen_layers"] == ["conv1", "bn1", "layer1"]
    base = torch.load(next(torch_home.rglob("*.pth")), weights_only=True)
    assert torch.equal(bundle.state_dict["layer1.0.conv1.weight"], base["layer1.0.conv1.weight"])
    assert not torch.equal(bundle.state_dict["layer4.0.conv1.weight"], base["layer4.0.conv1.weight"])


def test_missing_data_dir_is_a_clear_error(tmp_path):
    done = run_cli("finetune", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.bundle"))
    assert done.returncode == 2 and "no such directory" in done.stderr and "Traceback" not in done.stderr


def test_a_single_class_is_refused(tmp_path):
    data = write_dataset(tmp_path / "data", 2, seed=4)
    for name in ("crisps", "milk"):
        for file in (data / name).iterdir():
            file.unlink()
        (data / name).rmdir()
    done = run_cli("finetune", str(data), "--out", str(tmp_path / "x.bundle"))
    assert done.returncode == 2 and "at least 2" in done.stderr


def test_an_empty_class_folder_is_named(tmp_path):
    data = write_dataset(tmp_path / "data", 2, seed=5)
    (data / "bread").mkdir()
    done = run_cli("finetune", str(data), "--out", str(tmp_path / "x.bundle"))
    assert done.returncode == 2 and "bread" in done.stderr


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    data = write_dataset(tmp_path / "data", 3, seed=6)
    (data / "cola" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (data / "milk" / "empty.png").write_bytes(b"")
    dataset = load_image_folder(data, 40)
    assert dataset.skipped == 2 and len(dataset) == 9
    assert dataset.per_class() == {"cola": 3, "crisps": 3, "milk": 3}


def test_a_class_with_only_corrupt_images_is_refused(tmp_path):
    data = write_dataset(tmp_path / "data", 2, seed=7)
    for file in (data / "milk").iterdir():
        file.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="no readable images left in class folder\\(s\\): milk"):
        load_image_folder(data, 40)


def test_validation_folder_with_other_classes_is_refused(tmp_path, empty_torch_home):
    data = write_dataset(tmp_path / "data", 3, seed=8)
    val = write_dataset(tmp_path / "val", 2, seed=9)
    (val / "cola").rename(val / "cake")
    done = run_cli(*finetune_args(data, tmp_path / "x.bundle", "--val", str(val)), env=cli_env(TORCH_HOME=str(empty_torch_home)))
    assert done.returncode == 78 and "differ from training classes" in done.stderr


def test_model_info_of_finetuned_bundle_is_json(tiny_bundle):
    assert json.loads(run_cli("model", "info", str(tiny_bundle)).stdout)["model_id"].startswith("tiny-test")
