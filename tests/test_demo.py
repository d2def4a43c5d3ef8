"""The demo: cached model, checkout lane, events and the POS basket."""

import socket

from capture.lane import LaneScene
from stream.pipeline.result import EventKind, ItemEvent
from stream.tools.demo import DemoOptions, demo_config
from stream.tools.demo_eval import score_lane
from stream.wire.basket import Basket
from tests.conftest import cli_env, run_cli


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_runs_headless_with_a_cached_model_and_prints_the_basket(demo_cache):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    done = run_cli("demo", "--headless", "--duration", "12", "--publish", endpoint, "--seed", "3",
                   env=cli_env(STREAMREC_CACHE_DIR=str(demo_cache)), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "First run" not in done.stderr, "a cached model must be used"
    assert "item_present" in done.stderr, done.stderr[-4000:]
    added = [line for line in done.stdout.splitlines() if line.startswith("+ ")]
    assert added and "basket:" in added[0]
    assert "Final basket:" in done.stderr


def test_demo_config_ignores_the_empty_lane_class(tmp_path):
    config = demo_config(tmp_path / "m.bundle", DemoOptions())
    assert config.events.ignore_labels == ("empty",)
    assert config.cameras[0].source == "synthetic:lane"


def test_basket_adds_once_per_event_id():
    basket = Basket()
    present = {"type": "event", "event": "item_present", "event_id": "e1", "label": "cola can", "camera": "lane", "score": 0.9}
    assert basket.apply(present) == "cola can"
    assert basket.apply(dict(present)) is None  # a repeat never charges twice
    assert basket.apply({**present, "event": "item_removed"}) is None
    assert basket.apply({**present, "event_id": "e2", "label": "milk carton"}) == "milk carton"
    assert basket.apply({"type": "result", "topk": []}) is None
    assert basket.items == ["cola can", "milk carton"]
    assert basket.describe() == "1 x cola can, 1 x milk carton (2 items)"


def test_basket_calls_the_attendant_for_an_unknown_item_and_adds_nothing():
    basket = Basket()
    unknown = {"type": "event", "event": "item_unknown", "event_id": "u1", "label": None, "camera": "lane",
               "candidates": [{"label": "oat milk", "score": 0.4}, {"label": "milk carton", "score": 0.3}]}
    line = basket.line_for(unknown)
    assert line.startswith("? unknown item — attendant [lane]") and "pick list: oat milk, milk carton" in line
    assert basket.line_for(dict(unknown)) is None and basket.items == []
    assert basket.line_for({**unknown, "event": "item_removed"}) is None
    split = {**unknown, "event_id": "u2", "reason": "ambiguous"}
    line = basket.line_for(split)
    assert line.startswith("? which product? — pick one or call the attendant [lane]") and "oat milk, milk carton" in line
    assert basket.items == []


def event(kind, label, event_id):
    return ItemEvent("lane", kind, event_id, label, 0, 0.9, 5)


def test_lane_scoring_counts_exact_missed_repeated_and_wrong():
    scene = LaneScene(seed=11)
    passes = scene.passes_until(2000)[:4]
    frames = passes[3].next_start
    a, b, c, d = passes
    fired = [
        (a.rest_start, event(EventKind.ITEM_PRESENT, a.product.label, "1")),
        (a.end, event(EventKind.ITEM_REMOVED, a.product.label, "1")),
        (c.rest_start, event(EventKind.ITEM_PRESENT, c.product.label, "2")),
        (c.rest_start + 20, event(EventKind.ITEM_PRESENT, c.product.label, "3")),
        (d.rest_start, event(EventKind.ITEM_PRESENT, "not " + d.product.label, "4")),
    ]
    score = score_lane(scene, fired, frames)
    assert (score.passes, score.exactly_one_correct, score.missed, score.repeated, score.wrong_label) == (4, 1, 1, 1, 1)


def test_catalog_only_keeps_the_catalogs_head_rows_and_a_new_model_id(tiny_bundle):
    import torch

    from inference.bundle import load_bundle
    from stream.tools.demo import catalog_only

    bundle = load_bundle(tiny_bundle)
    trimmed = catalog_only(bundle, 4)
    assert trimmed.labels == bundle.labels[:4] and trimmed.model_id != bundle.model_id
    assert list(trimmed.metrics["per_class_top1"]) == [k for k in bundle.metrics["per_class_top1"] if k in trimmed.labels]
    crop = bundle.input.crop
    full = bundle.to_classifier().predict(torch.zeros(2, 3, crop, crop))
    assert torch.allclose(trimmed.to_classifier().predict(torch.zeros(2, 3, crop, crop)), full[:, :4], atol=1e-5)
