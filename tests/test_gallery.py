"""The gallery file (atomic, tied to its bundle's weights, never silently emptied), the feature statistics a bundle
carries, and recognition over head and gallery."""

import json

import numpy as np
import pytest
import torch

from inference.feature_stats import FeatureStats, quantiles
from inference.gallery import (
    Gallery,
    GalleryError,
    gallery_path_for,
    load_gallery,
    new_entry,
    normalized,
    prototypes_of,
    save_gallery,
)
from inference.open_catalog import DEFAULT_UNKNOWN_THRESHOLD, LIKE_KNOWN_UP_TO, OpenCatalog

DIM = 8


def _units(rng, count, around):
    return normalized(around + 0.05 * rng.standard_normal((count, DIM)))


def _gallery(*labels):
    rng = np.random.default_rng(0)
    gallery = Gallery("model-1234", DIM)
    for i, label in enumerate(labels):
        gallery = gallery.with_entry(new_entry(label, _units(rng, 20, np.eye(DIM)[4 + i]), 3, "images:test"))
    return gallery


def test_a_gallery_reads_back_as_written(tmp_path):
    path = save_gallery(_gallery("oat milk", "rice cakes"), tmp_path / "m.bundle.gallery")
    back = load_gallery(path, "model-1234")
    assert back.labels == ("oat milk", "rice cakes")
    assert [e.views for e in back.entries] == [20, 20] and back.entries[0].prototypes.shape == (3, DIM)
    assert np.allclose(np.linalg.norm(back.entries[1].prototypes, axis=1), 1.0)
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert not [p for p in tmp_path.iterdir() if p.name != path.name]  # nothing left behind


def test_a_look_alike_is_remembered_and_older_galleries_without_one_still_read(tmp_path):
    from dataclasses import replace

    gallery = _gallery("oat milk", "napix bag")
    gallery = gallery.with_entry(replace(gallery.entries[1], look_alike="coffee beans"))
    back = load_gallery(save_gallery(gallery, tmp_path / "m.bundle.gallery"), "model-1234")
    assert [e.summary()["look_alike"] for e in back.entries] == [None, "coffee beans"]
    path = tmp_path / "m.bundle.gallery"
    with np.load(path) as archive:
        header, rows, owners = json.loads(archive["header"].tobytes()), archive["prototypes"], archive["owners"]
    for entry in header["entries"]:
        del entry["look_alike"]
    with open(path, "wb") as handle:
        np.savez(handle, header=np.frombuffer(json.dumps(header).encode(), np.uint8), prototypes=rows, owners=owners)
    assert [e.look_alike for e in load_gallery(path, "model-1234").entries] == ["", ""]


def test_a_truncated_gallery_is_refused_not_emptied(tmp_path):
    path = save_gallery(_gallery("oat milk"), tmp_path / "m.bundle.gallery")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(GalleryError, match="damaged or truncated.*enroll the products again"):
        load_gallery(path, "model-1234")


def test_a_gallery_of_other_weights_is_refused(tmp_path):
    path = save_gallery(_gallery("oat milk"), tmp_path / "m.bundle.gallery")
    with pytest.raises(GalleryError, match="enrolled with model model-1234, not model-9999"):
        load_gallery(path, "model-9999")


def test_entries_are_replaced_and_removed_by_label():
    gallery = _gallery("oat milk", "rice cakes").with_entry(new_entry("oat milk", np.eye(DIM)[:5], 2, "camera:x"))
    assert gallery.labels == ("rice cakes", "oat milk") and gallery.entries[1].source == "camera:x"
    assert gallery.without("rice cakes").labels == ("oat milk",)
    with pytest.raises(KeyError):
        gallery.without("tea")


def test_prototypes_are_unit_centres_of_the_views_main_looks():
    rng = np.random.default_rng(1)
    views = np.concatenate([_units(rng, 30, np.eye(DIM)[0]), _units(rng, 30, np.eye(DIM)[1])])
    centres = prototypes_of(views, 2)
    assert np.allclose(np.linalg.norm(centres, axis=1), 1.0)
    assert sorted(int(np.argmax(c)) for c in centres) == [0, 1]


def test_the_gallery_lives_beside_its_bundle(tmp_path):
    assert gallery_path_for(tmp_path / "products.bundle") == tmp_path / "products.bundle.gallery"


def _catalog(gallery):
    """Two trained labels around axes 0 and 1; known pictures' similarity to their nearest prototype 0.9-1.0."""
    stats = FeatureStats(np.zeros(DIM, np.float32), np.eye(DIM, dtype=np.float32)[:2], np.array([0, 1]),
                         quantiles(np.linspace(0.9, 1.0, 50)))
    return OpenCatalog(("cola", "water"), stats, gallery)


def test_without_a_gallery_the_ranking_is_the_heads():
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    features = torch.from_numpy(np.eye(DIM, dtype=np.float32)[:2])
    found = _catalog(Gallery("model-1234", DIM)).recognize(logits, features, 2)
    assert [r.ranked[0].label for r in found] == ["cola", "water"]
    assert found[0].ranked[0].score == pytest.approx(float(torch.softmax(logits[0], 0)[0]))
    assert {p.source for r in found for p in r.ranked} == {"head"}


def test_an_enrolled_product_wins_its_own_views_and_trained_ones_keep_theirs():
    catalog = _catalog(_gallery("oat milk"))
    features = torch.from_numpy(np.eye(DIM, dtype=np.float32)[[0, 4]])
    found = catalog.recognize(torch.tensor([[3.0, 0.0], [0.0, 3.0]]), features, 3)
    assert (found[0].ranked[0].label, found[0].ranked[0].source) == ("cola", "head")
    assert (found[1].ranked[0].label, found[1].ranked[0].source) == ("oat milk", "gallery")
    assert found[1].ranked[0].index == 2
    assert all(sum(p.score for p in r.ranked) == pytest.approx(1.0, abs=1e-5) for r in found)


def test_the_unknown_score_grows_with_the_distance_to_every_known_product():
    catalog = _catalog(_gallery("oat milk"))
    far = normalized(np.ones((1, DIM)) - 2 * np.eye(DIM)[[0]] - 2 * np.eye(DIM)[[1]] - 2 * np.eye(DIM)[[4]])
    features = torch.from_numpy(np.concatenate([np.eye(DIM)[[0]], far]).astype(np.float32))
    near, unknown = catalog.recognize(torch.zeros((2, 2)), features, 1)
    assert near.unknown_score < 0.1 and unknown.unknown_score == 1.0


def test_a_frame_the_head_takes_for_the_empty_lane_is_never_an_unknown_item():
    """Hands over an empty lane are far from every product, but the head knows the empty lane: no unknown item."""
    far = normalized(np.ones((2, DIM)) - 2 * np.eye(DIM)[[0, 0]] - 2 * np.eye(DIM)[[1, 1]] - 2 * np.eye(DIM)[[4, 4]])
    features = torch.from_numpy(far.astype(np.float32))
    logits = torch.tensor([[0.0, 3.0], [3.0, 0.0]])  # the head: water ("empty" below) 95%, then cola 95%
    plain = _catalog(_gallery("oat milk")).recognize(logits, features, 1)
    stats = _catalog(Gallery("model-1234", DIM)).stats
    aware = OpenCatalog(("cola", "water"), stats, _gallery("oat milk"), background_labels=("water", "empty"))
    empty_lane, product = aware.recognize(logits, features, 1)
    assert [r.unknown_score for r in plain] == [1.0, 1.0]
    assert empty_lane.unknown_score < DEFAULT_UNKNOWN_THRESHOLD and product.unknown_score == 1.0
    unsure = aware.recognize(torch.tensor([[0.0, 0.01]]), features[:1], 1)[0]  # water at 50.2%: still background
    assert unsure.unknown_score < DEFAULT_UNKNOWN_THRESHOLD


@pytest.mark.parametrize("cola_logit, flagged", [(0.85, False), (1.39, True)])
def test_a_hand_resting_on_the_empty_lane_leaves_the_belt_enough_of_the_head_to_stay_no_unknown_item(cola_logit,
                                                                                                       flagged):
    """Cola ranks first, but the belt keeps 30% (a hand resting on it): not unknown; at 20% the frame is unknown."""
    far = normalized(np.ones((1, DIM)) - 2 * np.eye(DIM)[[0]] - 2 * np.eye(DIM)[[1]] - 2 * np.eye(DIM)[[4]])
    stats = _catalog(Gallery("model-1234", DIM)).stats
    aware = OpenCatalog(("cola", "water"), stats, _gallery("oat milk"), background_labels=("water",))
    found = aware.recognize(torch.tensor([[cola_logit, 0.0]]), torch.from_numpy(far.astype(np.float32)), 1)[0]
    assert (found.unknown_score >= DEFAULT_UNKNOWN_THRESHOLD) == flagged and found.unknown_score >= 0.9


@pytest.mark.parametrize("threshold", [0.6, 0.98])
def test_a_frame_on_the_belt_keeps_how_far_it_is_below_the_threshold(threshold):
    """A product the colour of the belt leaves the belt 0.40 of the head: never flagged by that frame alone (and
    still a pick when split between known products), but further from every known product than a known picture on
    the belt, so it still ranks as more unknown."""
    near_and_far = normalized(np.stack([np.eye(DIM)[0] + 0.1 * np.eye(DIM)[3], np.ones(DIM) - 2 * np.eye(DIM)[1]]))
    stats = _catalog(Gallery("model-1234", DIM)).stats
    aware = OpenCatalog(("cola", "water"), stats, _gallery("oat milk"), background_labels=("water",),
                        unknown_threshold=threshold)
    features = torch.from_numpy(near_and_far.astype(np.float32))
    known, unknown = aware.recognize(torch.tensor([[0.4, 0.0], [0.4, 0.0]]), features, 1)
    assert known.unknown_score < unknown.unknown_score < threshold
    assert unknown.unknown_score == pytest.approx(min(LIKE_KNOWN_UP_TO, threshold - 0.01))


def test_the_belt_the_head_finds_more_likely_than_not_keeps_its_share_however_like_an_enrolled_product():
    """A hand over the empty lane can sit nearest an enrolled product: where the head gives the belt at least half,
    the belt keeps the head's probability; below half (a product the head cannot place) the gallery's share stands."""
    stats = _catalog(Gallery("model-1234", DIM)).stats
    aware = OpenCatalog(("cola", "water"), stats, _gallery("oat milk"), background_labels=("water",))
    like_oat_milk = torch.from_numpy(np.eye(DIM, dtype=np.float32)[[4, 4, 4]])
    found = aware.recognize(torch.tensor([[0.0, 3.0], [0.2, 0.0], [3.0, 0.0]]), like_oat_milk, 3)
    belt, unplaced, product = found
    assert belt.ranked[0].label == "water" and belt.ranked[0].score == pytest.approx(0.953, abs=1e-3)
    assert unplaced.ranked[0].label == "oat milk" and unplaced.ranked[0].score > 0.99
    assert product.ranked[0].label == "oat milk" and product.ranked[0].score > 0.99
    assert all(sum(p.score for p in r.ranked) == pytest.approx(1.0, abs=1e-5) for r in found)
