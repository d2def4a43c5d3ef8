"""`streamrec demo`: train (once, cached) a model of the demo catalog, then run the checkout lane with a POS basket."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from capture.catalog import CATALOG_VERSION, EMPTY_LABEL
from config.loader import validate
from config.paths import cache_root
from config.schema import DEFAULT_ENDPOINT, AppConfig
from inference.artifacts import quarantine
from inference.bundle import Bundle, load_bundle, model_id_for, save_bundle
from inference.errors import ModelError
from inference.preprocess import InputSpec
from inference.training.trainer import TrainConfig
from stream.tools.progress import ProgressBar

log = logging.getLogger(__name__)

DEMO_RECIPE = "recipe-v2"
"""Bump when the demo's training recipe changes: cached models are keyed by catalog and recipe.
v2: the backbone also learns generated auxiliary products, so its features describe products in general."""
DEMO_MODEL_VERSION = f"{CATALOG_VERSION}-{DEMO_RECIPE}"
DEMO_TRAIN = TrainConfig(input=InputSpec.for_crop(96), epochs=6, batch_size=32, learning_rate=2e-3, patience=99, seed=0)
DEMO_PER_CLASS = 200
DEMO_VAL_PER_CLASS = 40
DEMO_TRAIN_SEED = 1
DEMO_VAL_SEED = 2
DEMO_LANE_SEED = 7
DEMO_AUX_PRODUCTS = 150
DEMO_AUX_PER_PRODUCT = 20
DEMO_AUX_SEED = 900
"""Auxiliary products: a stand-in for ImageNet pre-training (no download here). Their seed is never used by
`demo --evaluate`, whose enrolled and unknown products are other generated ones."""
DEMO_KEYPOINT_SEED = 5
"""The pictures the demo products' second-look references come from."""
REFERENCES_KEY = "references"
DEMO_REFERENCES = f"catalog pictures at full size with keypoint positions, seed {DEMO_KEYPOINT_SEED}"
"""Where the demo bundle's second-look references come from (its feature stats' extra)."""
DEMO_EVENTS = {"enter_frames": 6, "exit_frames": 8, "min_score": 0.8, "exit_score": 0.4, "ignore_labels": [EMPTY_LABEL]}


@dataclass(frozen=True)
class DemoOptions:
    """What `streamrec demo` was asked for."""

    duration: Optional[float] = None
    headless: bool = False
    endpoint: str = DEFAULT_ENDPOINT
    seed: int = DEMO_LANE_SEED
    rebuild: bool = False
    cache_dir: Optional[Path] = None


def demo_bundle_path(root: Path) -> Path:
    """The cached demo model for this catalog and recipe version."""
    return root / "demo" / DEMO_MODEL_VERSION / "demo-catalog.bundle"


def ensure_demo_model(path: Path, rebuild: bool = False) -> Bundle:
    """Load the cached demo model, or render the catalog and train it (a few minutes, with progress)."""
    if path.is_file() and not rebuild:
        try:
            bundle = with_reference_keypoints(load_bundle(path), path)
            log.info("demo model %s (validation top-1 %.1f%%) from %s", bundle.model_id,
                     100 * bundle.metrics.get("val_top1", 0), path)
            return bundle
        except ModelError as exc:
            quarantine(path, str(exc).splitlines()[0][:200])
    return build_demo_model(path)


def build_demo_model(path: Path) -> Bundle:
    """Render the demo catalog, fine-tune ResNet-18 on it, and cache the bundle at `path`."""
    from capture.catalog_dataset import render_catalog
    from capture.new_products import new_products, render_products
    from inference.training.dataset import ImageDataset
    from stream.tools.finetune import (
        TrainingProgress,
        train_bundle,
        trained_feature_stats,
    )

    started = time.monotonic()
    print(f"First run: rendering the demo catalog and training its model (cached in {path.parent}).", file=sys.stderr)
    size = DEMO_TRAIN.input.resize
    train_bar = ProgressBar("rendering catalog", 1)
    images, labels, classes = render_catalog(DEMO_PER_CLASS, DEMO_TRAIN_SEED, size, progress=train_bar.update_total)
    train_bar.close(f"{len(images)} training pictures")
    val_images, val_labels, _ = render_catalog(DEMO_VAL_PER_CLASS, DEMO_VAL_SEED, size)
    aux = new_products(DEMO_AUX_PRODUCTS, DEMO_AUX_SEED)
    aux_bar = ProgressBar("rendering auxiliary products", len(aux))
    aux_images = render_products(aux, DEMO_AUX_PER_PRODUCT, DEMO_AUX_SEED, size, workers=2,
                                 progress=aux_bar.update_total)
    aux_bar.close(f"{len(aux_images)} pictures of {len(aux)} products")
    all_classes = (*classes, *(p.label for p in aux))
    aux_labels = np.repeat(np.arange(len(classes), len(all_classes)), DEMO_AUX_PER_PRODUCT)
    train = ImageDataset(np.concatenate([images, aux_images]), np.concatenate([labels, aux_labels]), all_classes)
    val = ImageDataset(val_images, val_labels, all_classes)
    dataset = {"generator": CATALOG_VERSION, "train_seed": DEMO_TRAIN_SEED, "val_seed": DEMO_VAL_SEED,
               "classes": len(classes), "train_images": len(images), "val_images": len(val),
               "auxiliary_products": len(aux), "auxiliary_images": len(aux_images), "auxiliary_seed": DEMO_AUX_SEED}
    trained = train_bundle(train, val, DEMO_TRAIN, "demo-catalog",
                           (None, "none (trained from scratch on the demo catalog and auxiliary products)"),
                           dataset, TrainingProgress(), feature_stats=False)
    bundle = catalog_only(trained, len(classes))
    bundle = replace(bundle, features=trained_feature_stats(bundle, ImageDataset(images, labels, classes),
                                                            ImageDataset(val_images, val_labels, classes)))
    bundle = with_reference_keypoints(bundle)
    save_bundle(bundle, path)
    print(f"Demo model ready in {time.monotonic() - started:.0f} s: validation top-1 "
          f"{bundle.metrics['val_top1'] * 100:.1f}% ({path}).", file=sys.stderr)
    return bundle


def with_reference_keypoints(bundle: Bundle, path: Optional[Path] = None) -> Bundle:
    """The demo bundle with its products' second-look references, from pictures rendered at the catalog's full
    size (the training pictures are too small to show the printed names: references from them make the look
    abstain). A cached bundle whose references are not these (made before they existed, built from its training
    pictures before 2026-12-06, or without keypoint positions before 2026-12-07) gets them once (a few seconds,
    same weights), saved again at `path`."""
    from capture.catalog_dataset import RENDER_SIZE, render_class
    from inference.second_look import REFERENCE_VIEWS, reference_descriptors

    if bundle.features is None or bundle.features.extra.get(REFERENCES_KEY) == DEMO_REFERENCES:
        return bundle
    per_label = [reference_descriptors(render_class(label, REFERENCE_VIEWS, DEMO_KEYPOINT_SEED, RENDER_SIZE))
                 for label in range(len(bundle.labels))]
    features = bundle.features.with_keypoints(per_label)
    bundle = replace(bundle, features=replace(features, extra={**features.extra, REFERENCES_KEY: DEMO_REFERENCES}))
    if path is not None:
        save_bundle(bundle, path)
        log.info("demo model %s: second-look references from the catalog at full size", bundle.model_id)
    return bundle


def catalog_only(bundle: Bundle, classes: int) -> Bundle:
    """The bundle with its head cut down to the first `classes` labels (the auxiliary products' rows dropped)."""
    state = dict(bundle.state_dict)
    state["fc.weight"], state["fc.bias"] = state["fc.weight"][:classes].clone(), state["fc.bias"][:classes].clone()
    labels = bundle.labels[:classes]
    metrics = dict(bundle.metrics)
    metrics["per_class_top1"] = {k: v for k, v in metrics.get("per_class_top1", {}).items() if k in labels}
    metrics["confusion"] = [row[:classes] for row in metrics.get("confusion", [])[:classes]]
    return replace(bundle, state_dict=state, labels=labels, metrics=metrics,
                   model_id=model_id_for("demo-catalog", state))


def demo_config(bundle_path: Path, options: DemoOptions) -> AppConfig:
    """One camera on the checkout-lane scene, the demo model, events tuned for the lane."""
    return validate({
        "cameras": [{"id": "lane", "source": "synthetic:lane", "seed": options.seed}],
        "model": {"spec": str(bundle_path)},
        "publisher": {"endpoint": options.endpoint},
        "overlay": {"enabled": not options.headless, "window_title": "streamrec demo"},
        "events": DEMO_EVENTS,
    }, origin="demo")


def run_demo(options: DemoOptions) -> int:
    """Ensure the model, then run the lane with a basket printed from the published events."""
    from stream.service.runner import run_pipeline
    from stream.wire.subscriber import BasketPrinter

    path = demo_bundle_path(options.cache_dir or cache_root())
    ensure_demo_model(path, options.rebuild)
    config = demo_config(path, options)
    stop_printer = threading.Event()
    printer = BasketPrinter(config.publisher.endpoint, sys.stdout, stop_printer)
    printer.start()
    try:
        return run_pipeline(config, duration=options.duration)
    finally:
        time.sleep(0.2)  # let the last events reach the printer
        stop_printer.set()
        printer.join(2)
        print(f"Final basket: {printer.basket.describe()}", file=sys.stderr)
