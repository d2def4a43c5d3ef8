"""The second look: keypoints of the picture itself decide between look-alikes that differ only by their printed
name, where the features split the frame."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from capture.catalog import PRODUCTS
from capture.catalog_dataset import RENDER_SIZE, render_product
from capture.lane import LaneScene
from inference.feature_stats import FeatureStats, quantiles
from inference.gallery import Gallery, GalleryError, load_gallery, new_entry, normalized, save_gallery
from inference.open_catalog import OpenCatalog
from inference.second_look import (
    OLDER_REFERENCE_WIDTH,
    REFERENCE_WIDTH,
    SecondLook,
    keypoints_of,
    off_belt,
    reference_descriptors,
)

COFFEE = next(p for p in PRODUCTS if p.label == "coffee beans")
NAPIX = replace(COFFEE, label="napix bag", text="NAPIX")
NADEO = replace(COFFEE, label="nadeo bag", text="NADEO")
BAGS = (COFFEE, NAPIX, NADEO)
BLUE = replace(COFFEE, label="blue coffee", body=(170, 60, 30))
"""The same bag in another colour: the look sees grey and must not decide between it and coffee beans."""
GREEN_TEA = next(p for p in PRODUCTS if p.label == "green tea")
TEO = replace(GREEN_TEA, label="teo tea", text="TEO")
"""Green tea's box with a name sharing two of its letters: most of its keypoints are green tea's too."""


@pytest.fixture(scope="module")
def references():
    return {p.label: reference_descriptors(render_product(p, i, 20, 41, RENDER_SIZE))
            for i, p in enumerate((*BAGS, BLUE))}


def _at_rest(product, seed):
    scene = LaneScene(seed=seed, products=(product,))
    current = scene.passes_until(0)[0]
    return scene.render((current.rest_start + current.rest_end) // 2)


def test_keypoints_have_positions_and_sift_descriptors_and_none_for_a_plain_picture():
    found = keypoints_of(_at_rest(COFFEE, 1))
    assert found.points.shape == (len(found), 2) and found.descriptors.shape == (len(found), 128) and len(found) > 10
    assert found.points.max() <= 480 and found.points.min() >= 0  # in the frame shrunk to 480 px
    assert len(keypoints_of(np.full((240, 320, 3), 128, np.uint8))) == 0


def test_references_keep_each_keypoints_view_and_position(references):
    rows = references["coffee beans"]
    assert rows.shape[1] == REFERENCE_WIDTH == 133 and set(np.unique(rows[:, 128])) == set(range(20))
    picture = render_product(COFFEE, 0, 1, 41, RENDER_SIZE)[0]
    found, one = keypoints_of(picture), reference_descriptors([picture])
    x = (one[:, 129].astype(int) * 256 + one[:, 130]) / 8
    y = (one[:, 131].astype(int) * 256 + one[:, 132]) / 8
    assert np.abs(np.stack([x, y], axis=1) - found.points).max() <= 1 / 16  # positions to 1/8 pixel


def test_bags_that_differ_only_by_their_name_are_told_apart_on_the_lane(references):
    look = SecondLook(references)
    labels = [p.label for p in BAGS]
    verdicts = [(look.decide(_at_rest(product, seed), labels), truth) for seed in (11, 12, 13, 14, 15)
                for truth, product in enumerate(BAGS)]
    assert all(verdict in (None, truth) for verdict, truth in verdicts)  # it abstains rather than guess
    assert sum(verdict == truth for verdict, truth in verdicts) >= 10


def test_a_name_on_a_shared_design_is_decided_by_the_keypoints_only_one_candidate_has():
    teas = (GREEN_TEA, TEO)
    look = SecondLook({p.label: reference_descriptors(render_product(p, i, 20, 41, RENDER_SIZE))
                       for i, p in enumerate(teas)})
    labels = [p.label for p in teas]
    pictures = [(_at_rest(product, seed), truth) for seed in (11, 12, 13) for truth, product in enumerate(teas)]
    shared = [look.inliers(picture, labels) for picture, _truth in pictures]
    assert all(counts.min() >= 0.5 * counts.max() for counts in shared)  # all inliers alike: the design
    verdicts = [(look.decide(picture, labels), truth) for picture, truth in pictures]
    assert all(verdict in (None, truth) for verdict, truth in verdicts)
    assert sum(verdict == truth for verdict, truth in verdicts) >= 5


def test_products_that_differ_only_in_colour_are_never_decided_by_the_look(references):
    look = SecondLook(references)
    assert look.tells_apart(["coffee beans", "napix bag"]) and look.tells_apart(["coffee beans", "napix bag", "nadeo bag"])
    assert not look.tells_apart(["coffee beans", "blue coffee"])
    for seed in (11, 12, 13):
        assert look.decide(_at_rest(BLUE, seed), ["coffee beans", "blue coffee"]) is None
        assert look.decide(_at_rest(COFFEE, seed), ["blue coffee", "coffee beans"]) is None


def test_the_look_abstains_without_references_or_without_evidence(references):
    look = SecondLook(references)
    assert look.decide(_at_rest(NAPIX, 11), ["napix bag", "oat milk"]) is None  # oat milk: no references
    assert look.decide(np.full((480, 640, 3), 90, np.uint8), ["coffee beans", "napix bag"]) is None


def _catalog(references, split_below=0.5):
    dim = 4
    stats = FeatureStats(np.zeros(dim, np.float32), np.eye(dim, dtype=np.float32)[:2], np.array([0, 1]),
                         quantiles(np.linspace(0.5, 1.0, 50)))
    stats = stats.with_keypoints([np.zeros((0, REFERENCE_WIDTH), np.uint8), references["coffee beans"]])
    entries = [new_entry(label, normalized(np.eye(dim, dtype=np.float32)[[2 + i]]), 1, "test", references[label])
               for i, label in enumerate(("napix bag", "nadeo bag"))]
    gallery = Gallery("m", dim, tuple(entries))
    return OpenCatalog(("empty", "coffee beans"), stats, gallery, split_below=split_below)


def _split_row():
    """Logits and features of a frame split between coffee beans, napix and nadeo (about 0.33 each)."""
    features = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    return torch.tensor([[-5.0, 5.0]]), features


def test_a_split_frame_given_its_picture_goes_to_the_product_it_shows(references):
    catalog = _catalog(references)
    logits, features = _split_row()
    plain = catalog.recognize(logits, features, 3)[0]
    assert plain.ranked[0].score < 0.5 and sum(p.score for p in plain.ranked) > 0.9
    looked = catalog.recognize(logits, features, 3, [_at_rest(NAPIX, 11)], ["lane"])[0]
    assert looked.ranked[0].label == "napix bag" and looked.ranked[0].source == "gallery"
    assert looked.ranked[0].score == pytest.approx(sum(p.score for p in plain.ranked), abs=1e-6)
    assert [p.label for p in looked.ranked[1:]] == [p.label for p in plain.ranked if p.label != "napix bag"]
    assert looked.unknown_score == plain.unknown_score and looked.second_look and not plain.second_look


def test_a_frame_that_is_not_split_is_left_as_the_features_rank_it(references):
    catalog = _catalog(references, split_below=0.2)
    logits, features = _split_row()
    plain = catalog.recognize(logits, features, 3)[0]
    looked = catalog.recognize(logits, features, 3, [_at_rest(NAPIX, 11)], ["lane"])[0]
    assert [(p.label, p.score) for p in looked.ranked] == [(p.label, p.score) for p in plain.ranked]
    assert not looked.second_look


def test_references_are_kept_with_the_bundle_stats_and_the_gallery(references, tmp_path):
    catalog = _catalog(references)
    payload = catalog.stats.to_payload()
    back = FeatureStats.from_payload(payload, 2)
    assert np.array_equal(back.keypoints_by_label(("empty", "coffee beans"))["coffee beans"], references["coffee beans"])
    del payload["keypoints"], payload["keypoint_owners"]
    assert len(FeatureStats.from_payload(payload, 2).keypoints) == 0  # a bundle made before: no second look
    path = save_gallery(catalog.gallery, tmp_path / "m.bundle.gallery")
    loaded = load_gallery(path, "m")
    assert np.array_equal(loaded.keypoints_by_label()["nadeo bag"], references["nadeo bag"])
    assert [e.summary()["keypoints"] for e in loaded.entries] == [len(references["napix bag"]), len(references["nadeo bag"])]


def test_a_gallery_with_an_inconsistent_keypoint_table_is_refused(references, tmp_path):
    import io
    import json

    path = save_gallery(_catalog(references).gallery, tmp_path / "m.bundle.gallery")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["keypoint_owners"] = arrays["keypoint_owners"] + 5
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(GalleryError, match="keypoint table"):
        load_gallery(path, "m")
    assert json.loads(arrays["header"].tobytes())["entries"]  # the file was a real gallery, only its table broken


@pytest.mark.parametrize("references_before", ["none", "from its small training pictures"])
def test_a_cached_demo_model_gets_full_size_references_once_with_the_same_weights(tiny_bundle, tmp_path,
                                                                                  references_before):
    from inference.bundle import load_bundle, save_bundle
    from stream.tools.demo import with_reference_keypoints

    bundle = load_bundle(tiny_bundle)
    assert len(bundle.features.keypoints)  # finetune took references from the tiny training pictures
    if references_before == "none":
        bundle = replace(bundle, features=replace(bundle.features, keypoints=np.zeros((0, REFERENCE_WIDTH), np.uint8),
                                                  keypoint_owners=np.zeros((0,), np.int64)))
    path = save_bundle(bundle, tmp_path / "demo-catalog.bundle")
    upgraded = with_reference_keypoints(load_bundle(path), path)
    stored = load_bundle(path)
    assert stored.model_id == bundle.model_id and len(stored.features.keypoints) == len(upgraded.features.keypoints)
    assert len(stored.features.keypoints) > len(bundle.features.keypoints)
    assert set(stored.features.keypoints_by_label(stored.labels)) >= {p.label for p in PRODUCTS}
    assert with_reference_keypoints(stored, path) is stored  # nothing to add the next time


def test_the_cameras_own_empty_belt_counts_for_no_product(references):
    """Lane seed 27's striped belt: its keypoints, found again at the same places on the next frames, are dropped
    before a look, so only the product's count."""
    look = SecondLook(references)
    labels = [p.label for p in BAGS]
    scene = LaneScene(seed=27, products=(NAPIX,))
    current = scene.passes_until(0)[0]
    empty, other_empty = scene.render(current.end + 3), scene.render(current.end + 8)
    belt = keypoints_of(other_empty)
    assert len(off_belt(keypoints_of(empty), belt)) < 0.5 * len(keypoints_of(empty))  # most of them
    assert look.decide(empty, labels, belt) is None
    assert look.decide(_at_rest(NAPIX, 27), labels, belt) == 1


def test_references_of_the_format_without_positions_are_not_used(references):
    older = {label: rows[:, :OLDER_REFERENCE_WIDTH] for label, rows in references.items()}
    look = SecondLook(older)
    assert look.labels == () and look.decide(_at_rest(NAPIX, 11), [p.label for p in BAGS]) is None


def test_the_catalog_learns_each_cameras_belt_from_frames_the_head_takes_for_it(references):
    stats = FeatureStats(np.zeros(4, np.float32), np.eye(4, dtype=np.float32)[:2], np.array([0, 1]),
                         quantiles(np.linspace(0.5, 1.0, 50)))
    stats = stats.with_keypoints([np.zeros((0, REFERENCE_WIDTH), np.uint8), references["coffee beans"]])
    entries = [new_entry(label, normalized(np.eye(4, dtype=np.float32)[[2 + i]]), 1, "test", references[label])
               for i, label in enumerate(("napix bag", "nadeo bag"))]
    catalog = OpenCatalog(("empty", "coffee beans"), stats, Gallery("m", 4, tuple(entries)), background_labels=("empty",))
    scene = LaneScene(seed=27, products=(NAPIX,))
    empty_belt = scene.render(scene.passes_until(0)[0].end + 3)
    logits = torch.tensor([[10.0, -10.0], [-5.0, 5.0]])
    features = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    found = catalog.recognize(logits, features, 3, [empty_belt, _at_rest(NAPIX, 27)], ["lane", "lane"])
    assert found[0].ranked[0].label == "empty" and not found[0].second_look
    assert found[1].ranked[0].label == "napix bag" and found[1].second_look


def test_references_stored_without_positions_are_set_aside_with_a_warning(references, tmp_path, caplog):
    """Bundles and galleries from before 2026-12-07 still load: their references are not used, and the operator is
    told what brings the second look back."""
    import io
    import logging
    import threading

    from stream.pipeline.model_slot import ModelSlot
    from stream.service.gallery_watch import GalleryWatcher

    catalog = _catalog(references)
    payload = catalog.stats.to_payload()
    payload["keypoints"] = payload["keypoints"][:, :OLDER_REFERENCE_WIDTH]
    stats = FeatureStats.from_payload(payload, 2)
    assert len(stats.keypoints) == 0 and stats.outdated_keypoints == len(references["coffee beans"])
    with caplog.at_level(logging.WARNING):
        GalleryWatcher(ModelSlot(), tmp_path / "old.bundle", ("empty", "coffee beans"), "m", stats,
                       threading.Event())
    assert "train it again with `streamrec finetune`" in caplog.text
    path = save_gallery(catalog.gallery, tmp_path / "m.bundle.gallery")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["keypoints"] = arrays["keypoints"][:, :OLDER_REFERENCE_WIDTH]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    with caplog.at_level(logging.WARNING):
        loaded = load_gallery(path, "m")
    assert loaded.labels == ("napix bag", "nadeo bag") and not loaded.keypoints_by_label()
    assert "'nadeo bag', 'napix bag'" in caplog.text and "enroll these products again" in caplog.text
