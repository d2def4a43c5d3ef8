"""The open catalog's cost: the worker's model step with a gallery of 1,000 prototypes (predict_with_features, then
ranking head and gallery together) against the plain step (predict, then top-k), in alternating windows; and what
one second look at a split frame costs."""

from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np
import torch

from inference.feature_stats import CALIBRATION_QUANTILES, FeatureStats
from inference.features import predict_with_features
from inference.gallery import Gallery, new_entry, normalized
from inference.model import Classifier
from inference.open_catalog import OpenCatalog
from inference.speed import CallTimes, timed_calls
from inference.topk import top_k

PROTOTYPES = 1000
PER_PRODUCT = 8
WINDOWS = (False, True, True, False) * 2
BATCH = 8
LOOKS = 20


class _Step:
    """One worker model step as timed_calls calls it (`predict`)."""

    def __init__(self, classifier: Classifier, catalog: Optional[OpenCatalog]) -> None:
        self._classifier, self._catalog = classifier, catalog

    def predict(self, batch: torch.Tensor):
        if self._catalog is None:
            return top_k(self._classifier.predict(batch), self._classifier.labels, 3)
        logits, features = predict_with_features(self._classifier, batch)
        return self._catalog.recognize(logits, features, 3)


def synthetic_catalog(labels: tuple[str, ...], width: int, prototypes: int = PROTOTYPES, seed: int = 0) -> OpenCatalog:
    """Random unit prototypes: one per trained label, and `prototypes` more as enrolled products of PER_PRODUCT each
    (the cost depends on their number, not on what they recognise)."""
    rng = np.random.default_rng(seed)
    owners = np.arange(len(labels))
    stats = FeatureStats(np.zeros(width, np.float32), normalized(rng.normal(size=(len(labels), width))).astype(np.float32),
                         owners, tuple(float(q) for q in np.linspace(0.2, 0.9, len(CALIBRATION_QUANTILES))))
    gallery = Gallery("bench", width)
    for product in range(prototypes // PER_PRODUCT):
        views = normalized(rng.normal(size=(PER_PRODUCT, width))).astype(np.float32)
        gallery = gallery.with_entry(new_entry(f"enrolled {product}", views, PER_PRODUCT, "bench"))
    return OpenCatalog(labels, stats, gallery)


def open_catalog_row(classifier: Classifier, backend: str, precision: str, seconds: float,
                     lanes: int = 1) -> Optional[dict[str, Any]]:
    """img/s of the plain step and of the open-catalog step, or None when the path gives no features."""
    crop = classifier.input_spec.crop
    batch = torch.randn(BATCH, 3, crop, crop)
    features = predict_with_features(classifier, batch)[1]
    if features is None:
        return None
    catalog = synthetic_catalog(tuple(classifier.labels), int(features.shape[1]))
    measured: dict[bool, list[CallTimes]] = {False: [], True: []}
    window = seconds / WINDOWS.count(True)
    for index, with_catalog in enumerate(WINDOWS):
        step = _Step(classifier, catalog if with_catalog else None)
        measured[with_catalog].append(timed_calls(step, batch, window, lanes, warmup_calls=2 if index < 2 else 0))
    plain, open_ = (_img_per_s(measured[False]), _img_per_s(measured[True]))
    return {"backend": backend, "precision": precision, "batch": BATCH, "gallery_prototypes": PROTOTYPES,
            "prototypes": catalog.prototype_count,
            "img_per_s_plain": round(plain, 2), "img_per_s_open_catalog": round(open_, 2),
            "ratio": round(open_ / plain, 3), "second_look_ms": second_look_ms()}


def second_look_ms(looks: int = LOOKS) -> dict[str, float]:
    """Milliseconds of one second look (p50, p99): a 640×480 lane frame of a bag of coffee beans split between it
    and two look-alikes with other names, references from REFERENCE_VIEWS pictures of each."""
    from dataclasses import replace

    from capture.catalog import PRODUCTS
    from capture.catalog_dataset import RENDER_SIZE, render_product
    from capture.lane import LaneScene
    from inference.second_look import SecondLook, reference_descriptors

    coffee = next(p for p in PRODUCTS if p.label == "coffee beans")
    bags = (coffee, replace(coffee, label="napix", text="NAPIX"), replace(coffee, label="nadeo", text="NADEO"))
    look = SecondLook({p.label: reference_descriptors(render_product(p, i, 20, 5, RENDER_SIZE)) for i, p in enumerate(bags)})
    scene = LaneScene(seed=3, products=bags)
    frame = scene.render((scene.passes_until(0)[0].rest_start + scene.passes_until(0)[0].rest_end) // 2)
    times = []
    for _ in range(looks):
        started = time.perf_counter()
        look.inliers(frame, [p.label for p in bags])  # what a look costs once its candidates are known apart
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": round(float(np.percentile(times, 50)), 2), "p99": round(float(np.percentile(times, 99)), 2)}


def _img_per_s(windows: list[CallTimes]) -> float:
    return sum(len(c.latencies_ms) * c.batch for c in windows) / sum(c.elapsed_s for c in windows)
