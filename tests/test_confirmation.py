"""Confirming confident labels: a package with another name on a known design, which the features take for the
known product with full confidence, is not charged as it; the genuine product is, looked at once."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from capture.catalog import PRODUCTS
from capture.catalog_dataset import RENDER_SIZE, render_product
from capture.frame import Frame
from capture.lane import LaneScene
from config.schema import EventsConfig
from inference.confirmation import UNCONFIRMED_FRAMES, UNCONFIRMED_SCALE
from inference.feature_stats import FeatureStats, quantiles
from inference.gallery import Gallery, new_entry, normalized
from inference.open_catalog import DEFAULT_UNKNOWN_THRESHOLD, OpenCatalog
from inference.second_look import REFERENCE_WIDTH, SecondLook, Verdict, reference_descriptors
from stream.pipeline.events import EventTracker
from stream.pipeline.result import EventKind, Result

CORN = next(p for p in PRODUCTS if p.label == "corn flakes")
MIKAPIX = replace(CORN, label="mikapix box", text="MIKAPIX")
"""Corn flakes' box with another name: a never-enrolled product the features take for corn flakes."""
PLAIN = replace(CORN, label="plain box", text="", accent=CORN.body)
COLA = next(p for p in PRODUCTS if p.label == "cola can")


@pytest.fixture(scope="module")
def references():
    return {p.label: reference_descriptors(render_product(p, i, 20, 41, RENDER_SIZE))
            for i, p in enumerate((CORN, PLAIN, COLA))}


def _at_rest(product, seed):
    scene = LaneScene(seed=seed, products=(product,))
    current = scene.passes_until(0)[0]
    return scene.render((current.rest_start + current.rest_end) // 2)


def test_a_label_is_confirmed_by_its_own_product_and_not_by_another_name_on_its_design(references):
    look = SecondLook(references)
    assert look.can_confirm("corn flakes") and look.own_level("corn flakes") >= 12
    assert not look.can_confirm("oat milk")  # no references
    for seed in (11, 12, 13):
        assert look.confirms(_at_rest(CORN, seed), "corn flakes") is True
        assert look.confirms(_at_rest(MIKAPIX, seed), "corn flakes") is False


def test_a_plain_package_is_never_doubted(references):
    look = SecondLook(references)
    assert not look.can_confirm("plain box") and look.confirms(_at_rest(MIKAPIX, 11), "plain box") is None


def test_a_split_frame_of_another_name_on_a_known_design_is_not_decided_as_the_known_product(references):
    look = SecondLook(references)
    candidates = ["corn flakes", "plain box"]
    assert look.tells_apart(candidates) and look.decide(_at_rest(CORN, 11), candidates) == 0
    for seed in (11, 12, 13):  # corn flakes' keypoints tell it from the plain box, but too few of them for itself
        assert look.decide(_at_rest(MIKAPIX, seed), candidates) is None


def test_products_enrolled_from_a_camera_recording_are_never_confirmed_by_the_look(references):
    assert not SecondLook(references, recorded=["corn flakes"]).can_confirm("corn flakes")


class CountingLook(SecondLook):
    def __init__(self, references):
        super().__init__(references)
        self.looks = 0

    def confirms(self, image, label, belt=None):
        self.looks += 1
        return super().confirms(image, label, belt)


def _catalog(references, min_score=0.8):
    stats = FeatureStats(np.zeros(4, np.float32), np.eye(4, dtype=np.float32)[:2], np.array([0, 1]),
                         quantiles(np.linspace(0.5, 1.0, 50)))
    stats = stats.with_keypoints([np.zeros((0, REFERENCE_WIDTH), np.uint8), references["corn flakes"]])
    catalog = OpenCatalog(("empty", "corn flakes"), stats, Gallery("m", 4), background_labels=("empty",),
                          split_below=min_score)
    catalog.second_look = catalog._confirmation.look = CountingLook(references)
    return catalog


def _recognize(catalog, picture, frames, batch=4):
    """`frames` frames of `picture` that the features take for corn flakes with full confidence, in batches."""
    logits, features = torch.tensor([[-6.0, 6.0]] * batch), torch.tensor([[0.0, 1.0, 0.0, 0.0]] * batch)
    found = []
    for _ in range(0, frames, batch):
        found += catalog.recognize(logits, features, 2, [picture] * batch, ["lane"] * batch)
    return found


def test_the_genuine_product_is_looked_at_once_and_keeps_its_scores(references):
    catalog = _catalog(references)
    found = _recognize(catalog, _at_rest(CORN, 12), 40)
    assert all(r.ranked[0].label == "corn flakes" and r.ranked[0].score > 0.99 for r in found)
    assert not any(r.unconfirmed for r in found) and max(r.unknown_score for r in found) < 0.5
    assert catalog.second_look.looks == 1


def test_another_name_on_the_design_loses_its_confidence_then_is_unknown(references):
    catalog = _catalog(references)
    found = _recognize(catalog, _at_rest(MIKAPIX, 12), 40)
    assert all(r.unconfirmed and r.ranked[0].label == "corn flakes" for r in found)
    assert found[0].ranked[0].score == pytest.approx(UNCONFIRMED_SCALE, abs=1e-3)
    assert [r.unknown_score == 1.0 for r in found] == [False] * UNCONFIRMED_FRAMES + [True] * (40 - UNCONFIRMED_FRAMES)
    waiting = [r.unknown_score for r in found[:UNCONFIRMED_FRAMES]]  # as unknown as can be without the flag
    assert waiting == pytest.approx([DEFAULT_UNKNOWN_THRESHOLD - 0.01] * UNCONFIRMED_FRAMES)
    assert catalog.second_look.looks == 10  # one per batch while it is not confirmed


def test_with_a_low_min_score_an_unconfirmed_frame_still_falls_below_it(references):
    found = _recognize(_catalog(references, min_score=0.4), _at_rest(MIKAPIX, 12), 4)
    assert all(r.unconfirmed and sum(p.score for p in r.ranked) < 0.4 for r in found)


def test_the_empty_belt_between_items_starts_the_next_one_afresh(references):
    catalog = _catalog(references)
    _recognize(catalog, _at_rest(CORN, 12), 8)
    empty = catalog.recognize(torch.tensor([[8.0, -8.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]), 2,
                              [_at_rest(CORN, 12)], ["lane"])
    assert empty[0].ranked[0].label == "empty" and not empty[0].unconfirmed
    assert all(r.unconfirmed for r in _recognize(catalog, _at_rest(MIKAPIX, 12), 8))


def test_on_the_lane_the_look_alike_becomes_an_unknown_item_and_the_genuine_one_is_charged(references):
    events = EventsConfig(enter_frames=6, exit_frames=8, min_score=0.8, exit_score=0.4, ignore_labels=["empty"])
    kinds = {}
    for product in (CORN, MIKAPIX):
        tracker = EventTracker(events)
        found = _recognize(_catalog(references), _at_rest(product, 13), 48)
        kinds[product.label] = [event.kind for n, r in enumerate(found) for event in tracker.update(
            Result(Frame("lane", n, 0.0, 0.0, np.empty((1, 1, 3), np.uint8)), r.ranked, "m", 0.0,
                   unknown_score=r.unknown_score, unknown=r.unknown_score >= 0.98, unconfirmed=r.unconfirmed))]
    assert kinds == {"corn flakes": [EventKind.ITEM_PRESENT], "mikapix box": [EventKind.ITEM_UNKNOWN]}


@pytest.mark.parametrize("source, doubted", [("images:/photos/corn", True), ("camera:usb:0", False),
                                             ("web:lane", False)])
def test_products_enrolled_from_a_camera_recording_are_not_confirmed(references, source, doubted):
    """A recording's frames share its belt and hand: their references match each other far better than the
    product on the lane matches them, so their own level says nothing about the lane."""
    stats = FeatureStats(np.zeros(4, np.float32), np.eye(4, dtype=np.float32)[:1], np.array([0]),
                         quantiles(np.linspace(0.5, 1.0, 50)))
    stats = stats.with_keypoints([np.zeros((0, REFERENCE_WIDTH), np.uint8)])
    entry = new_entry("flakes", normalized(np.eye(4, dtype=np.float32)[[1]]), 1, source, references["corn flakes"])
    catalog = OpenCatalog(("empty", "cola"), stats, Gallery("m", 4, (entry,)), background_labels=("empty",),
                          split_below=0.8)
    found = catalog.recognize(torch.tensor([[-6.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0, 0.0]]), 2,
                              [_at_rest(MIKAPIX, 12)], ["lane"])[0]
    assert found.ranked[0].label == "flakes" and found.unconfirmed is doubted


def test_a_split_frame_showing_too_little_of_the_winner_counts_against_it_then_is_unknown(references):
    """MIKAPIX split between corn flakes and the plain box: corn flakes' distinctive keypoints win, but the picture
    shows too little of corn flakes. It counts as a frame that does not confirm corn flakes: no pick list while it
    waits, then unknown. Genuine corn flakes split the same way are decided as corn flakes."""
    look = SecondLook(references)
    candidates = ["corn flakes", "plain box", "cola can"]
    assert look.look(_at_rest(MIKAPIX, 12), candidates).short_of == 0
    assert look.look(_at_rest(CORN, 12), candidates) == Verdict(winner=0)
    milk = _at_rest(next(p for p in PRODUCTS if p.label == "milk carton"), 12)
    assert look.look(milk, ["corn flakes", "cola can"]) == Verdict(short_of=0)  # shows neither of them
    assert look.look(milk, ["corn flakes", "plain box"]) == Verdict()  # the plain box's pictures cannot say
    stats = FeatureStats(np.zeros(4, np.float32), np.eye(4, dtype=np.float32), np.arange(4),
                         quantiles(np.linspace(0.5, 1.0, 50)))
    stats = stats.with_keypoints([np.zeros((0, REFERENCE_WIDTH), np.uint8), references["corn flakes"],
                                  references["plain box"], references["cola can"]])
    split = torch.tensor([[-6.0, 0.3, 0.0, -2.0]] * 4), torch.tensor([[0.0, 1.0, 0.0, 0.0]] * 4)  # 53% / 40% / 7%
    for picture, doubted in ((MIKAPIX, True), (CORN, False)):
        catalog = OpenCatalog(("empty", "corn flakes", "plain box", "cola can"), stats, Gallery("m", 4),
                              background_labels=("empty",), split_below=0.8)
        found = []
        for _ in range(6):
            found += catalog.recognize(*split, 3, [_at_rest(picture, 12)] * 4, ["lane"] * 4)
        assert all(r.unconfirmed == doubted and r.second_look != doubted for r in found)
        assert all(sum(p.score for p in r.ranked) < 0.5 for r in found) == doubted
        unknown_after = UNCONFIRMED_FRAMES if doubted else len(found)
        assert [r.unknown_score == 1.0 for r in found] == [i >= unknown_after for i in range(len(found))]
    unlike_all = split[0], -torch.ones(4, 4)  # a hand over the lane: its own score says it, the look adds nothing
    hand = catalog.recognize(*unlike_all, 3, [_at_rest(MIKAPIX, 12)] * 4, ["hand"] * 4)
    assert not any(r.unconfirmed for r in hand) and all(r.ranked[0].score > 0.5 for r in hand)
