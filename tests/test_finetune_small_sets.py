"""Fine-tuning on a small folder of photos: enough steps, batch-norm statistics that match evaluation, and an
honest verdict at the end."""

import numpy as np
import pytest
import torch

from capture.photo_set import DISTINCT_PRODUCTS, products_named, render_photos, write_photo_folder
from inference.bundle import load_bundle
from inference.preprocess import BatchPreprocessor, InputSpec, normalize_crops
from inference.training.dataset import ImageDataset, stratified_split
from inference.training.early_stop import EarlyStop
from inference.training.trainer import build_model, recompute_batch_norm
from stream.tools.finetune_verdict import verdict
from tests.conftest import cli_env, run_cli


def test_recomputed_batch_norm_makes_evaluation_match_training_mode():
    torch.manual_seed(0)
    model = build_model(3, None)
    images = np.random.default_rng(0).integers(0, 256, (24, 72, 72, 3), dtype=np.uint8)
    data, spec = ImageDataset(images, np.zeros(24, np.int64), ("a", "b", "c")), InputSpec.for_crop(64)
    inputs = normalize_crops(images[:, 4:68, 4:68], spec)  # the centre crops
    with torch.no_grad():
        before = model.eval()(inputs)
        recompute_batch_norm(model, data, spec, bf16=False, batch_size=32)
        after = model.eval()(inputs)
        training = model.train()(inputs)
    assert (after - training).abs().max() < 0.05 * training.abs().max()
    assert (before - training).abs().max() > 10 * (after - training).abs().max()


def test_a_good_model_gets_per_class_figures_and_no_warning():
    judged = verdict(("cola", "milk"), [[6, 0], [1, 5]], {"cola": 34, "milk": 34}, pretrained=False)
    assert not judged.poor
    assert judged.lines[0] == "validation: 91.7% top-1 on 12 pictures"
    assert "  cola: 100% (6/6)" in judged.lines and "  milk: 83% (5/6)" in judged.lines
    assert any("milk taken for cola 1×" in line for line in judged.lines)


def test_a_poor_model_says_why_and_what_to_do():
    judged = verdict(("cola", "milk", "tea"), [[3, 0, 0], [2, 1, 0], [0, 0, 3]], {"cola": 12, "milk": 12, "tea": 12},
                     pretrained=False)
    text = "\n".join(judged.lines)
    assert judged.poor and "warning: this model is poor (78% top-1; weak: milk)" in text
    assert "at least 40 per product" in text and "streamrec model fetch" in text and "--val DIR" in text
    assert "streamrec enroll --model BUNDLE --label NAME --images DIR" in text


def test_a_noisy_validation_loss_that_trends_down_does_not_stop_training():
    losses = [1.0, 0.5, 0.8, 0.75, 0.7, 0.55, 0.5, 0.45, 0.4]  # one lucky epoch, then a steady fall
    stop = EarlyStop(patience=3)
    assert not any(stop.update(loss, 0.5) for loss in losses)
    best, stale = float("inf"), []  # the raw best loss would have stopped at the fifth epoch
    for loss in losses:
        stale.append(0 if loss < best else stale[-1] + 1)
        best = min(best, loss)
    assert stale.index(3) == 4


def test_training_stops_after_patience_epochs_without_progress_but_not_before_the_minimum():
    stop = EarlyStop(patience=2, min_epochs=5)
    assert [stop.update(0.5, 0.9) for _ in range(6)] == [False, False, False, False, True, True]
    rising = EarlyStop(patience=2)
    assert [rising.update(0.5, accuracy) for accuracy in (0.5, 0.6, 0.6, 0.7, 0.7, 0.7)] == [False] * 5 + [True]


def test_small_classes_keep_enough_validation_pictures():
    data = ImageDataset(np.zeros((60, 4, 4, 3), np.uint8), np.repeat(np.arange(3), 20), ("a", "b", "c"))
    train, val = stratified_split(data, 0.15, min_per_class=5)
    assert np.bincount(val.labels).tolist() == [5, 5, 5] and len(train) == 45
    tiny = ImageDataset(np.zeros((16, 4, 4, 3), np.uint8), np.repeat(np.arange(2), 8), ("a", "b"))
    assert np.bincount(stratified_split(tiny, 0.15, min_per_class=5)[1].labels).tolist() == [2, 2]


@pytest.mark.slow
def test_forty_photos_of_three_products_from_scratch_train_a_model_that_recognizes_new_pictures(tmp_path, empty_torch_home):
    """The issue's case: 3 products, 40 phone photos each, default settings, no ImageNet weights."""
    products = products_named(DISTINCT_PRODUCTS[:3])
    data = write_photo_folder(tmp_path / "photos", products, 40, seed=1)
    out = tmp_path / "shop.bundle"
    done = run_cli("finetune", str(data), "--out", str(out), env=cli_env(TORCH_HOME=str(empty_torch_home)), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = load_bundle(out)
    assert bundle.input.crop == 160 and bundle.metrics["val_top1"] >= 0.95, done.stderr[-3000:]
    assert "validation: " in done.stderr and ("most confused" in done.stderr or "no confusions" in done.stderr)
    assert "Training from scratch" in done.stderr and bundle.provenance["base_weights"].startswith("none")
    images, labels = render_photos(products, 30, seed=99)
    names = [product.label.replace(" ", "-") for product in products]
    expected = np.array([bundle.labels.index(names[label]) for label in labels])
    logits = bundle.to_classifier().predict(BatchPreprocessor(bundle.input, len(images))(images).clone())
    assert (logits.argmax(1).numpy() == expected).mean() >= 0.9
