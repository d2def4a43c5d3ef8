"""A running pipeline recognizes enrolled products: results rank trained and enrolled labels together (with
`source`) and carry `unknown_score`; a gallery written while it runs is picked up without a restart."""

import shutil
import threading
import time

from config.schema import ModelConfig
from inference.bundle import load_bundle
from stream.pipeline.app import Pipeline
from stream.service.gallery_watch import GalleryWatcher, gallery_watcher
from stream.tools.enroll import EnrollRequest, run_enroll
from tests.conftest import make_config
from tests.fakes import RecordingSink


def test_a_product_enrolled_while_the_pipeline_runs_is_recognized_within_seconds(tiny_bundle, tmp_path):
    bundle_path = shutil.copy(tiny_bundle, tmp_path / "shop.bundle")
    bundle = load_bundle(bundle_path)
    config = make_config([{"id": "cam0", "source": "synthetic:hold"}])
    recorder, stop = RecordingSink(), threading.Event()
    pipeline = Pipeline(config, bundle.to_classifier(bundle_path), stop, extra_sinks=[recorder])
    watcher = GalleryWatcher(pipeline.model, bundle_path, bundle.labels, bundle.model_id, bundle.features, stop,
                             interval=0.2)
    watcher.load_now()
    pipeline.start()
    watcher.start()
    try:
        _wait_for(lambda: len(recorder.results) >= 10, 30)
        before = list(recorder.results)
        run_enroll(EnrollRequest(bundle_path, "lulu", source="synthetic:hold", seconds=2.0))
        enrolled_at = time.monotonic()
        _wait_for(lambda: any(r.best.source == "gallery" for r in recorder.results[len(before):]), 15)
        seen_after_s = time.monotonic() - enrolled_at
    finally:
        stop.set()
        pipeline.shutdown()
        watcher.join(2)
    assert all(r.unknown_score is not None and all(p.source == "head" for p in r.topk) for r in before)
    later = [r for r in recorder.results[len(before):] if r.best.source == "gallery"]
    assert later and later[-1].best.label == "lulu" and later[-1].best.index == len(bundle.labels)
    assert seen_after_s < 5.0


def test_a_bundle_without_a_gallery_still_gets_unknown_scores_and_a_plain_model_none(tiny_bundle, tmp_path):
    stop = threading.Event()
    config = make_config([{"id": "cam0", "source": "synthetic"}])
    bundle = load_bundle(tiny_bundle)
    pipeline = Pipeline(config, bundle.to_classifier(tiny_bundle), stop)
    assert gallery_watcher(ModelConfig(spec=str(tiny_bundle)), pipeline.model, stop) is not None
    assert pipeline.model.catalog_for(pipeline.model.current) is not None
    assert gallery_watcher(ModelConfig(spec="resnet18"), pipeline.model, stop) is None


def test_the_services_catalog_never_calls_the_empty_lane_an_unknown_item(tiny_bundle):
    """events.ignore_labels reach the catalog: frames the head takes for the empty belt are never flagged."""
    import torch

    from capture.lane import LaneScene
    from inference.preprocess import BatchPreprocessor

    stop = threading.Event()
    bundle = load_bundle(tiny_bundle)
    classifier = bundle.to_classifier(tiny_bundle)
    pipeline = Pipeline(make_config([{"id": "cam0", "source": "synthetic"}]), classifier, stop)
    gallery_watcher(ModelConfig(spec=str(tiny_bundle), unknown_threshold=0.6), pipeline.model, stop, ("empty",))
    catalog = pipeline.model.catalog_for(classifier)
    scene = LaneScene(seed=5, empty=True)
    logits, features = classifier.predict_with_features(
        BatchPreprocessor(classifier.input_spec, 8)([scene.render(n) for n in range(0, 240, 30)]))
    empty = torch.softmax(logits.float(), dim=1)[:, bundle.labels.index("empty")] >= 0.5
    found = catalog.recognize(logits, features, 3)
    assert empty.any()
    assert all(r.unknown_score < 0.6 for r, is_empty in zip(found, empty) if is_empty)  # below the threshold


def _wait_for(condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
