"""The bench's open-catalog row: the model step with 1,000 gallery prototypes against the plain step."""

from inference.bundle import load_bundle
from stream.tools.bench.goals import goals
from stream.tools.bench.open_catalog import (
    PROTOTYPES,
    open_catalog_row,
    synthetic_catalog,
)
from tests.fakes import tiny_classifier


def test_the_synthetic_catalog_has_a_thousand_gallery_prototypes_beside_the_trained_labels():
    catalog = synthetic_catalog(("empty", "cola"), 16)
    assert catalog.prototype_count == PROTOTYPES + 2 and len(catalog.labels) == 2 + PROTOTYPES // 8


def test_the_row_times_both_steps_and_a_path_without_features_has_none(tiny_bundle):
    row = open_catalog_row(load_bundle(tiny_bundle).to_classifier(), "torch", "fp32", seconds=0.4)
    assert row["gallery_prototypes"] == PROTOTYPES and row["batch"] == 8
    assert row["img_per_s_plain"] > 0 and row["img_per_s_open_catalog"] > 0
    assert abs(row["ratio"] - row["img_per_s_open_catalog"] / row["img_per_s_plain"]) < 0.01
    assert 0 < row["second_look_ms"]["p50"] <= row["second_look_ms"]["p99"]
    assert open_catalog_row(tiny_classifier(), "torch", "fp32", seconds=0.2) is None


def test_the_goal_reads_the_rows_ratio():
    result = {"raw": [], "pipeline": [], "baseline": {"img_per_s": 1.0}, "agreement": [], "best": {"backend": "torch", "precision": "fp32"},
              "open_catalog": {"ratio": 0.97}}
    assert goals(result)["open_catalog_1000_prototypes"] == {"value": 0.97, "target": ">= 0.95", "met": True}
