"""The demo catalog and the checkout-lane scene."""

import numpy as np

from capture.catalog import EMPTY_LABEL, LABELS, PRODUCTS, draw_product
from capture.catalog_dataset import render_catalog
from capture.factory import SourceFactory
from capture.lane import LaneScene
from capture.new_products import new_products, render_products
from capture.scene import SpriteCache, draw_empty_belt_hand, draw_hand, render_sample
from config.loader import validate


def test_catalog_has_at_least_eight_distinct_products_of_several_shapes():
    assert len(PRODUCTS) >= 8
    assert len({p.label for p in PRODUCTS}) == len(PRODUCTS)
    assert {"can", "bottle", "box", "bag"} <= {p.shape for p in PRODUCTS}
    assert LABELS[0] == EMPTY_LABEL and len(LABELS) == len(PRODUCTS) + 1


def test_products_look_different_from_each_other():
    means = [draw_product(p)[:, :, :3][draw_product(p)[:, :, 3] > 0].mean(axis=0) for p in PRODUCTS]
    distances = [np.abs(a - b).sum() for i, a in enumerate(means) for b in means[i + 1:]]
    assert min(distances) > 20


def test_samples_are_reproducible_from_their_seed_and_vary_between_seeds():
    sprites = SpriteCache()
    first = render_sample(PRODUCTS[0], np.random.default_rng(5), 128, sprites)
    again = render_sample(PRODUCTS[0], np.random.default_rng(5), 128, sprites)
    other = render_sample(PRODUCTS[0], np.random.default_rng(6), 128, sprites)
    assert first.shape == (128, 128, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_empty_lane_pictures_show_hands_reaching_in_from_the_edge_too():
    def covered(draw, seed):
        frame = np.zeros((96, 96, 3), np.uint8)
        draw(frame, np.random.default_rng(seed))
        return float((frame.max(axis=2) > 0).mean())

    reaching_in = [covered(draw_hand, seed) for seed in range(100)]
    empty_lane = [covered(draw_empty_belt_hand, seed) for seed in range(100)]
    assert 0.4 <= np.mean([c > 0 for c in empty_lane]) <= 0.8
    assert sum(0 < c < min(reaching_in) for c in empty_lane) >= 5, "no hand only partly in view, as an arm sweeping in"


def test_render_catalog_labels_every_class():
    images, labels, classes = render_catalog(3, seed=0, out_size=40, workers=1)
    assert images.shape == (3 * len(LABELS), 40, 40, 3)
    assert classes == LABELS and np.bincount(labels).tolist() == [3] * len(LABELS)


def test_generated_products_render_the_same_pictures_in_worker_processes_with_progress():
    products = new_products(3, seed=41)
    reported = []
    alone = render_products(products, 2, seed=8, out_size=32, render_size=64)
    pooled = render_products(products, 2, seed=8, out_size=32, render_size=64, workers=2,
                             progress=lambda done, total: reported.append((done, total)))
    assert alone.shape == (6, 32, 32, 3)
    assert np.array_equal(alone, pooled)
    assert reported == [(1, 3), (2, 3), (3, 3)]


def test_lane_products_pass_one_after_another_with_empty_belt_between():
    scene = LaneScene(seed=3)
    passes = scene.passes_until(30 * 20)
    assert len(passes) >= 4
    for earlier, later in zip(passes, passes[1:]):
        assert earlier.start < earlier.rest_start < earlier.rest_end < earlier.end < earlier.next_start == later.start
    first = passes[0]
    assert scene.pass_at(first.start - 1) is None and scene.pass_at(first.end) is None
    assert scene.pass_at((first.rest_start + first.rest_end) // 2) is first
    resting = scene.render((first.rest_start + first.rest_end) // 2).astype(int)
    empty = scene.render(first.end + 2).astype(int)
    assert np.abs(resting - empty).mean() > 5


def test_lane_frames_are_a_pure_function_of_seed_and_index():
    a, b = LaneScene(seed=4), LaneScene(seed=4)
    assert np.array_equal(a.render(120), b.render(120))
    assert a.pass_at(120) == b.pass_at(120)


def test_lane_is_a_camera_source_at_30_fps():
    camera = validate({"cameras": [{"id": "lane", "source": "synthetic:lane", "seed": 2}]}).cameras[0]
    source = SourceFactory()(camera)
    source.open()
    frames = [source.read() for _ in range(3)]
    assert source.fps() == 30.0 and frames[0].shape == (480, 640, 3)
