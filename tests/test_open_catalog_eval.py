"""The open-catalog part of `demo --evaluate`: scoring of lane passes, AUROC, item latency, and a short real lane
through the tiny bundle with a gallery."""

import io

import numpy as np
import pytest

from capture.catalog import PRODUCTS
from capture.lane import LaneScene
from capture.new_products import new_products
from config.schema import EventsConfig
from inference.bundle import load_bundle
from inference.open_catalog import OpenCatalog
from stream.pipeline.result import EventKind, ItemEvent
from stream.tools.demo import DEMO_EVENTS
from stream.tools.open_catalog_eval import (
    OpenLaneRun,
    PassTally,
    write_charges,
    auroc,
    enroll,
    events_named,
    recognize_lane,
    rest_to_present_ms,
    write_latency,
    score_passes,
)

NEW = new_products(2, seed=77)


def event(kind, label, event_id="e"):
    return ItemEvent("lane", kind, event_id, label, 0, 0.9, 6)


def test_auroc_is_one_half_for_equal_scores_and_one_for_separated_ones():
    assert auroc(np.array([0.1, 0.2]), np.array([0.8, 0.9])) == 1.0
    assert auroc(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.5
    assert abs(auroc(np.array([0.1, 0.6]), np.array([0.5, 0.9])) - 0.75) < 1e-9


def test_passes_are_scored_per_group_and_latency_counts_from_rest():
    scene = LaneScene(seed=3, products=(PRODUCTS[0], NEW[0], NEW[1]))
    passes = scene.passes_until(0)
    while len(passes) < 3:
        passes = scene.passes_until(passes[-1].next_start)
    frames = passes[2].next_start
    run = OpenLaneRun(batch_seconds=[0.01])
    for current in passes[:3]:
        if current.product is NEW[1]:
            run.events.append((current.rest_start, event(EventKind.ITEM_UNKNOWN, None)))
        else:
            run.events.append((current.rest_start + 3, event(EventKind.ITEM_PRESENT, current.product.label)))
    groups = {"trained": {PRODUCTS[0].label}, "enrolled": {NEW[0].label}, "unknown": {NEW[1].label}}
    tallies = score_passes(scene, run, frames, groups)
    assert (tallies["trained"].correct, tallies["enrolled"].correct) == (1, 1)
    assert tallies["unknown"].flagged_unknown == 1 and tallies["unknown"].charged_other == 0
    assert rest_to_present_ms(scene, run, frames) == [100.0 + 10.0] * 2
    run.frame_seconds = [0.004, 0.005, 0.03]
    assert run.live_seconds() == pytest.approx(0.010 + 0.005)  # the batch wait (max_wait_ms) and the median frame
    assert rest_to_present_ms(scene, run, frames, run.live_seconds()) == pytest.approx([100.0 + 15.0] * 2)
    out = io.StringIO()
    write_latency(scene, run, frames, out)
    assert "p99 115 ms over 2 passes" in out.getvalue() and "batches of 16, 10 ms each: p99 110 ms" in out.getvalue()


def test_every_wrong_charge_is_listed_with_the_label_it_was_charged_as():
    scene = LaneScene(seed=3, products=(PRODUCTS[0], NEW[0]))
    passes = scene.passes_until(0)
    while len(passes) < 2:
        passes = scene.passes_until(passes[-1].next_start)
    run = OpenLaneRun()
    for current in passes[:2]:
        run.events.append((current.rest_start, event(EventKind.ITEM_PRESENT, PRODUCTS[1].label)))
    tallies = score_passes(scene, run, passes[1].next_start, {"trained": {PRODUCTS[0].label}, "unknown": {NEW[0].label}})
    assert tallies["unknown"].charges == {(NEW[0].label, PRODUCTS[1].label): 1}
    assert tallies["trained"].charged_other == 1
    out = io.StringIO()
    write_charges(tallies, out)
    assert f"{NEW[0].label!r} as {PRODUCTS[1].label!r} (1)" in out.getvalue()
    assert f"{PRODUCTS[0].label!r} as {PRODUCTS[1].label!r} (1)" in out.getvalue()
    quiet = io.StringIO()
    write_charges({"trained": PassTally()}, quiet)
    assert quiet.getvalue() == ""


def test_events_on_an_empty_lane_are_named_by_kind_and_label():
    assert events_named([]) == "0 events"
    fired = [(3, event(EventKind.ITEM_PRESENT, "coffee beans")), (9, event(EventKind.ITEM_REMOVED, "coffee beans")),
             (20, event(EventKind.ITEM_UNKNOWN, None, "u")), (30, event(EventKind.ITEM_UNKNOWN, None, "v"))]
    assert events_named(fired) == "4 events: item_present 'coffee beans' (1), item_unknown (2)"


def test_a_short_lane_with_enrolled_and_unknown_products_goes_the_way_run_takes_it(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    classifier = bundle.to_classifier()
    enrolled = enroll(bundle, classifier, NEW[:1])
    gallery = enrolled.gallery
    assert gallery.labels == (NEW[0].label,) and len(enrolled.seconds) == 1 and enrolled.tally.kept >= 5
    assert all(label == NEW[0].label for label, _known in enrolled.look_alikes)
    scene = LaneScene(seed=5, products=(PRODUCTS[1], NEW[0], NEW[1]))
    frames = 100
    run = recognize_lane(classifier, OpenCatalog(bundle.labels, bundle.features, gallery), scene, frames,
                         EventsConfig(**DEMO_EVENTS), threshold=0.99)
    assert len(run.batch_seconds) == (frames + 15) // 16
    assert len(run.frame_seconds) == 1 and run.frame_seconds[0] > 0  # the first batch's newest frame, timed alone
    resting = [s for values in run.resting_similarity.values() for s in values]
    assert resting and all(-1.0 <= s <= 1.0 for s in resting)
    published = [u for values in run.resting_unknown.values() for u in values]
    assert len(published) == len(resting) and all(0.0 <= u <= 1.0 for u in published)


def test_the_whole_report_on_a_small_scale(tiny_bundle, monkeypatch):
    import io

    from stream.tools import open_catalog_eval

    monkeypatch.setattr(open_catalog_eval, "NEW_PRODUCTS", 2)
    monkeypatch.setattr(open_catalog_eval, "LANE_ROUNDS", 1)
    monkeypatch.setattr(open_catalog_eval, "EMPTY_LANE_FRAMES", 48)
    monkeypatch.setattr(open_catalog_eval, "PRODUCTS", PRODUCTS[:2])
    out = io.StringIO()
    open_catalog_eval.evaluate_open_catalog(load_bundle(tiny_bundle), EventsConfig(**DEMO_EVENTS), out,
                                            trained_lane=(LaneScene(seed=1, products=PRODUCTS[:2]), 300))
    report = out.getvalue()
    for line in ("enrolled 1 new products", "enrolled with a look-alike warning: ", "trained products:", "enrolled products:", "never-enrolled products:",
                 "the checkout lane above again", "empty lane with hands passing (1 s)"):
        assert line in report, report
