"""Fixtures: weights files the tests make themselves, configs, and a CLI runner in a clean environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torchvision.models import resnet18

from config.loader import validate
from inference.weights import RESNET18_FILE

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def resnet18_checkpoint(tmp_path_factory) -> Path:
    """A ResNet-18 state dict with random weights (the real ImageNet file cannot be downloaded here)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / RESNET18_FILE
    torch.save(resnet18().state_dict(), path)
    return path


@pytest.fixture(scope="session", autouse=True)
def streamrec_cache(tmp_path_factory) -> Path:
    """One cache for the whole session (auto decisions, int8 and OpenVINO conversions); never the user's own."""
    path = tmp_path_factory.mktemp("streamrec-cache")
    previous = os.environ.get("STREAMREC_CACHE_DIR")
    os.environ["STREAMREC_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("STREAMREC_CACHE_DIR", None)
    else:
        os.environ["STREAMREC_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def warm_resnet18(resnet18_checkpoint, streamrec_cache) -> Path:
    """Make `precision = "auto"` decide once for the test ResNet-18, so CLI runs start without measuring."""
    from config.schema import ModelConfig
    from inference.backends.select import accelerate
    from inference.imagenet import load_imagenet_resnet18
    from inference.threads import plan_threads
    from stream.service.calibration import rendered_frames

    classifier = load_imagenet_resnet18(resnet18_checkpoint, allow_download=False)
    accelerate(classifier, ModelConfig(), 8, streamrec_cache / "models", plan_threads(), rendered_frames)
    return resnet18_checkpoint


@pytest.fixture
def torch_home(tmp_path, monkeypatch, warm_resnet18) -> Path:
    """A TORCH_HOME whose hub cache holds the ResNet-18 checkpoint."""
    home = tmp_path / "torch"
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    os.link(warm_resnet18, checkpoints / RESNET18_FILE) if _same_fs(warm_resnet18, checkpoints) else shutil.copy(warm_resnet18, checkpoints)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch) -> Path:
    """A TORCH_HOME with nothing in it."""
    home = tmp_path / "empty-torch"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def _same_fs(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def make_config(cameras: list[dict[str, Any]] | None = None, **tables: dict[str, Any]):
    """An AppConfig from plain dicts, publishing on a free loopback port unless told otherwise."""
    data: dict[str, Any] = {"cameras": cameras or [{"id": "cam0", "source": "synthetic"}]}
    data.update(tables)
    data.setdefault("publisher", {}).setdefault("endpoint", "tcp://127.0.0.1:*")
    data["publisher"].setdefault("heartbeat_interval_s", 0.2)
    return validate(data)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: no display, unbuffered, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def run_cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m stream ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "stream", *args], cwd=REPO, env=env or cli_env(), capture_output=True,
        text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs,
    )


TINY_INPUT = 48


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A small ResNet-18 bundle trained in seconds on the demo catalog (48 px): good enough to recognise products."""
    from capture.catalog_dataset import render_catalog
    from inference.bundle import save_bundle
    from inference.preprocess import InputSpec
    from inference.training.dataset import ImageDataset
    from inference.training.trainer import TrainConfig
    from stream.tools.finetune import train_bundle

    spec = InputSpec.for_crop(TINY_INPUT)
    images, labels, classes = render_catalog(60, seed=1, out_size=spec.resize, workers=1)
    val_images, val_labels, _ = render_catalog(10, seed=2, out_size=spec.resize, workers=1)
    config = TrainConfig(input=spec, epochs=8, batch_size=32, learning_rate=3e-3, patience=99, min_steps=0)
    bundle = train_bundle(ImageDataset(images, labels, classes), ImageDataset(val_images, val_labels, classes), config,
                          "tiny-test", (None, "none (test)"), {"generator": "test"})
    return save_bundle(bundle, tmp_path_factory.mktemp("bundle") / "tiny.bundle")


@pytest.fixture(scope="session")
def demo_cache(tiny_bundle, streamrec_cache) -> Path:
    """The session cache with the tiny bundle standing in for the cached demo model."""
    from stream.tools.demo import demo_bundle_path

    target = demo_bundle_path(streamrec_cache)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_bundle, target)
    return streamrec_cache
