"""`streamrec enroll`: a product added to a bundle's gallery from photos or a (synthetic) camera, listed by
`model info`, removed again; trained labels, damaged galleries and too few views refused with clear messages."""

import json
import shutil

import cv2
import numpy as np
import pytest

from capture.new_products import new_products
from capture.scene import SpriteCache, render_sample
from inference.gallery import gallery_path_for, load_gallery
from tests.conftest import run_cli


@pytest.fixture
def bundle(tiny_bundle, tmp_path):
    """A copy of the tiny bundle: enrolling writes its gallery beside it."""
    return shutil.copy(tiny_bundle, tmp_path / "shop.bundle")


def _photos(folder, count=30, seed=3):
    product = new_products(1, seed)[0]
    folder.mkdir()
    sprites = SpriteCache()
    for i in range(count):
        picture = render_sample(product, np.random.default_rng([seed, i]), 240, sprites)
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), cv2.resize(picture, (320, 240)))
    return folder


def test_photos_enroll_a_product_that_model_info_then_lists(bundle, tmp_path):
    done = run_cli("enroll", "--model", str(bundle), "--label", "oat milk", "--images", str(_photos(tmp_path / "oat")))
    assert done.returncode == 0, done.stderr
    assert "enrolled 'oat milk'" in done.stdout and "views kept" in done.stdout and "preview:" in done.stdout
    gallery = load_gallery(gallery_path_for(bundle))
    assert gallery.labels == ("oat milk",) and 5 <= gallery.entries[0].views <= 30
    info = json.loads(run_cli("model", "info", str(bundle)).stdout)
    assert [(p["label"], p["colours"]) for p in info["gallery"]["products"]] == [("oat milk", True)]
    assert info["features"]["dim"] == 512 and info["features"]["calibrated"] and info["features"]["keypoints"] > 0


def test_a_product_held_in_front_of_a_camera_is_enrolled(bundle):
    done = run_cli("enroll", "--model", str(bundle), "--label", "lulu", "--source", "synthetic:hold", "--seconds", "2")
    assert done.returncode == 0, done.stderr
    assert "recording 2 s" in done.stderr
    entry = load_gallery(gallery_path_for(bundle)).entries[0]
    assert entry.source == "camera:synthetic:hold" and entry.views >= 5
    assert not entry.summary()["colours"]  # a recording's frames share its belt and hand: no colours of its own


def _catalog_photos(folder, label_index, count=30, seed=7):
    """Pictures of a trained product, as a shop would take of the same package under another name."""
    from capture.catalog_dataset import render_class

    folder.mkdir()
    for i, picture in enumerate(render_class(label_index, count, seed, 240)):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), picture)
    return folder


def test_a_look_alike_of_a_trained_product_is_enrolled_with_a_warning_naming_it(bundle, tmp_path):
    from capture.catalog import PRODUCTS

    look_alike = run_cli("enroll", "--model", str(bundle), "--label", "cola 0.5l",
                         "--images", str(_catalog_photos(tmp_path / "cola", 1)))
    assert look_alike.returncode == 0, look_alike.stderr
    assert PRODUCTS[0].label == "cola can"
    assert "warning: the model can hardly tell 'cola 0.5l' from 'cola can'" in look_alike.stderr
    assert "--remove 'cola 0.5l'" in look_alike.stderr
    distinct = run_cli("enroll", "--model", str(bundle), "--label", "oat milk", "--images", str(_photos(tmp_path / "oat")))
    assert distinct.returncode == 0 and "preview:" in distinct.stdout
    assert "warning" not in distinct.stderr
    products = json.loads(run_cli("model", "info", str(bundle)).stdout)["gallery"]["products"]
    assert [(p["label"], p["look_alike"]) for p in products] == [("cola 0.5l", "cola can"), ("oat milk", None)]


def test_only_a_product_as_close_to_another_as_its_own_pictures_is_a_look_alike():
    from inference.enrollment_steps import LOOK_ALIKE_SCORE, EnrollPreview

    apart = EnrollPreview("oat milk", 30, 32, "milk carton", 0.8, closest_score=0.97)
    alike = EnrollPreview("napix bag", 14, 32, "coffee beans", 0.96, closest_score=0.58)
    assert apart.look_alike is None and apart.warning() is None
    assert alike.look_alike == "coffee beans" and 0.58 < LOOK_ALIKE_SCORE < 0.97
    assert "pick between the two, for both products" in alike.warning()
    assert EnrollPreview("tea", 5, 5).warning() is None
    like_empty = EnrollPreview("clear bag", 9, 32, "empty", 0.95, closest_score=0.5, closest_is_empty=True)
    assert like_empty.look_alike == "empty" and "may pass unregistered" in like_empty.warning()
    assert "pick" not in like_empty.warning()


def test_removing_a_product_leaves_the_others(bundle, tmp_path):
    for label, seed in (("oat milk", 3), ("rice cakes", 4)):
        photos = _photos(tmp_path / label.replace(" ", "-"), seed=seed)
        assert run_cli("enroll", "--model", str(bundle), "--label", label, "--images", str(photos)).returncode == 0
    done = run_cli("enroll", "--model", str(bundle), "--remove", "oat milk")
    assert done.returncode == 0 and "removed 'oat milk'" in done.stdout
    assert load_gallery(gallery_path_for(bundle)).labels == ("rice cakes",)
    missing = run_cli("enroll", "--model", str(bundle), "--remove", "tea")
    assert missing.returncode == 2 and "'tea' is not enrolled (enrolled: 'rice cakes')" in missing.stderr


def test_a_trained_label_or_too_few_views_are_refused(bundle, tmp_path):
    photos = _photos(tmp_path / "few", count=3)
    trained = run_cli("enroll", "--model", str(bundle), "--label", "cola can", "--images", str(photos))
    assert trained.returncode == 2 and "is a trained label" in trained.stderr
    few = run_cli("enroll", "--model", str(bundle), "--label", "oat milk", "--images", str(photos))
    assert few.returncode == 2 and "needs at least 5 usable views" in few.stderr
    assert not gallery_path_for(bundle).exists()


def test_a_damaged_gallery_stops_enrolling_with_exit_78(bundle, tmp_path):
    gallery_path_for(bundle).write_bytes(b"PK\x03\x04 half a file")
    done = run_cli("enroll", "--model", str(bundle), "--label", "oat milk", "--images", str(_photos(tmp_path / "oat")))
    assert done.returncode == 78 and "damaged or truncated" in done.stderr
    assert gallery_path_for(bundle).read_bytes() == b"PK\x03\x04 half a file"  # left for the operator to restore


def test_a_second_of_a_slowly_turned_product_gives_five_views_but_one_still_picture_does_not(tiny_bundle):
    """Consecutive frames of a product turned slowly are near-duplicates: the most distinct of them make up the
    minimum number of views (and the tally says so), while copies of one picture never do."""
    from capture.hold import HoldSource
    from inference.bundle import load_bundle
    from inference.enrollment import MIN_VIEWS, Enroller, EnrollmentError, ViewTally

    loaded = load_bundle(tiny_bundle)
    enroller = Enroller(loaded.to_classifier(tiny_bundle), loaded.features, ("empty",))
    assert enroller.empty_labels == ("empty",)
    source = HoldSource(seed=1)
    tally = ViewTally()
    turning = enroller.keep([source.render(n) for n in range(30, 60)], tally)
    assert len(turning) == MIN_VIEWS and tally.kept == MIN_VIEWS and tally.duplicate == 30 - MIN_VIEWS
    assert tally.alike > 0 and f"{tally.alike} of them nearly alike: turn the product" in tally.line()
    assert enroller.entry("lulu", turning, "test", tally).views == MIN_VIEWS
    still = ViewTally()
    with pytest.raises(EnrollmentError, match="needs at least 5 usable views"):
        enroller.entry("lulu", enroller.keep([source.render(45)] * 10, still), "test", still)
    assert still.kept == 1 and still.duplicate == 9
