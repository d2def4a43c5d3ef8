"""Confirming an enrolled label by its colours: a package of an enrolled product's design in another colour, which
the features take for it and the keypoints confirm, is not charged as it."""

import io

import numpy as np
import pytest
import torch

from capture.catalog import Product
from capture.catalog_dataset import RENDER_SIZE
from capture.lane import LaneScene
from capture.new_products import render_products
from inference.colour_look import HUE_BINS, ColourLook, colour_signature, shrunk
from inference.confirmation import UNCONFIRMED_FRAMES
from inference.feature_stats import FeatureStats, quantiles
from inference.gallery import Gallery, GalleryError, load_gallery, new_entry, normalized, save_gallery
from inference.open_catalog import OpenCatalog

PURPLE = Product("choco bar", "bar", (172, 13, 102), (230, 230, 230), "CHOCO", (255, 255, 255), 2.4)
BLUE = Product("blue choco bar", "bar", (170, 60, 30), (230, 230, 230), "CHOCO", (255, 255, 255), 2.4)
"""The same bar in purple and in blue: the features take one for the other, and their keypoints (on the white name
band) are the same."""


@pytest.fixture(scope="module")
def signatures():
    """From 50 pictures each, as `streamrec demo --evaluate` enrolls its new products."""
    return {"choco bar": colour_signature(render_products((PURPLE,), 50, 41, RENDER_SIZE))}


def _lane(product, seed):
    """A frame of `product` at rest and the camera's empty belt (shrunk, as the catalog keeps it)."""
    scene = LaneScene(seed=seed, products=(product,))
    current = scene.passes_until(0)[0]
    return scene.render((current.rest_start + current.rest_end) // 2), shrunk(scene.render(current.end + 3))


def test_a_product_shows_its_own_colours_and_not_those_of_another_product_of_its_shape(signatures):
    look = ColourLook(signatures)
    assert signatures["choco bar"].shape == (HUE_BINS,) and signatures["choco bar"].sum() == pytest.approx(1)
    for seed in (11, 12, 13):
        genuine, belt = _lane(PURPLE, seed)
        other, other_belt = _lane(BLUE, seed)
        assert look.confirms(genuine, "choco bar", belt) is True
        assert look.confirms(other, "choco bar", other_belt) is False
        assert look.share(other, "choco bar", other_belt) < look.share(genuine, "choco bar", belt) - 0.2


def test_colours_do_not_decide_without_a_signature_an_empty_belt_or_a_coloured_product_on_it(signatures):
    look = ColourLook(signatures)
    genuine, belt = _lane(PURPLE, 11)
    grey = np.full((200, 200, 3), 90, np.uint8)
    grey[50:150, 80:120] = (160, 160, 160)
    assert len(colour_signature([grey] * 5)) == 0  # a grey tin on a grey table: no colours to confirm it by
    assert look.confirms(genuine, "oat milk", belt) is None
    assert look.confirms(genuine, "choco bar", None) is None  # the camera's empty belt not seen yet
    empty = LaneScene(seed=11, products=(PURPLE,)).render(0)
    assert look.confirms(empty, "choco bar", shrunk(empty)) is None  # nothing on the belt


def _catalog(signatures, colours=True):
    """Trained: the empty lane and a cola can. Enrolled from photos: the purple bar, with its colours or (as
    before 2026-12-08) without."""
    stats = FeatureStats(np.zeros(4, np.float32), np.eye(4, dtype=np.float32)[:2], np.array([0, 1]),
                         quantiles(np.linspace(0.5, 1.0, 50)))
    entry = new_entry("choco bar", normalized(np.eye(4, dtype=np.float32)[[2]]), 1, "images:/photos/choco",
                      colours=signatures["choco bar"] if colours else None)
    return OpenCatalog(("empty", "cola"), stats, Gallery("m", 4, (entry,)), background_labels=("empty",),
                       split_below=0.8)


def _recognize(catalog, product, frames, batch=4):
    """The empty belt once, then `frames` frames of `product` at rest that the features take for the bar."""
    picture, _belt = _lane(product, 12)
    empty = LaneScene(seed=12, products=(product,)).render(0)
    catalog.recognize(torch.tensor([[8.0, -8.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]), 2, [empty], ["lane"])
    logits, features = torch.tensor([[-6.0, 0.0]] * batch), torch.tensor([[0.0, 0.0, 1.0, 0.0]] * batch)
    found = []
    for _ in range(0, frames, batch):
        found += catalog.recognize(logits, features, 2, [picture] * batch, ["lane"] * batch)
    return found


def test_a_bar_in_another_colour_loses_its_confidence_then_is_unknown_and_the_genuine_one_keeps_it(signatures):
    genuine = _recognize(_catalog(signatures), PURPLE, 24)
    assert all(r.ranked[0].label == "choco bar" and not r.unconfirmed for r in genuine)
    other = _recognize(_catalog(signatures), BLUE, 24)
    assert all(r.unconfirmed for r in other)
    assert [r.unknown_score == 1.0 for r in other] == [False] * UNCONFIRMED_FRAMES + [True] * (24 - UNCONFIRMED_FRAMES)
    assert not any(r.unconfirmed for r in _recognize(_catalog(signatures, colours=False), BLUE, 8))


def test_colour_signatures_are_kept_with_the_gallery_and_older_galleries_still_load(signatures, tmp_path):
    gallery = _catalog(signatures).gallery
    path = save_gallery(gallery, tmp_path / "m.bundle.gallery")
    assert np.array_equal(load_gallery(path, "m").colours_by_label()["choco bar"], signatures["choco bar"])
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    older = {name: array for name, array in arrays.items() if name != "colours"}
    path.write_bytes(_npz(older))
    assert load_gallery(path, "m").labels == ("choco bar",) and not load_gallery(path, "m").colours_by_label()
    path.write_bytes(_npz({**arrays, "colours": arrays["colours"][:, :5]}))
    with pytest.raises(GalleryError, match="colour table"):
        load_gallery(path, "m")


def _npz(arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
