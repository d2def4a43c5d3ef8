"""`streamrec demo --evaluate`: measure the demo model against its goals (accuracy, one event per product pass)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from capture.catalog import LABELS
from capture.catalog_dataset import RENDER_SIZE, render_class
from capture.frame import Frame
from capture.lane import LaneScene
from config.schema import EventsConfig
from inference.model import Classifier
from inference.preprocess import BatchPreprocessor
from inference.topk import top_k
from stream.pipeline.events import EventTracker
from stream.pipeline.result import EventKind, ItemEvent, Result
from stream.tools.open_catalog_eval import evaluate_open_catalog, events_named

EVAL_VAL_SEED = 1001
EVAL_LANE_SEED = 2002
BATCH = 16


@dataclass
class LaneScore:
    """How the events of a lane run compare with what really passed."""

    passes: int = 0
    exactly_one_correct: int = 0
    missed: int = 0
    wrong_label: int = 0
    repeated: int = 0
    unpaired_removal: int = 0
    false_events: int = 0
    mistakes: list[str] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.exactly_one_correct / self.passes if self.passes else 0.0


def classify_all(classifier: Classifier, images: Iterator[np.ndarray]) -> Iterator[tuple]:
    """Top-3 predictions for each image, batched exactly as the worker batches."""
    preprocess = BatchPreprocessor(classifier.input_spec, BATCH)
    pending: list[np.ndarray] = []
    for image in images:
        pending.append(image)
        if len(pending) == BATCH:
            yield from top_k(classifier.predict(preprocess(pending)), classifier.labels, 3)
            pending = []
    if pending:
        yield from top_k(classifier.predict(preprocess(pending)), classifier.labels, 3)


def validation_accuracy(classifier: Classifier, per_class: int, seed: int = EVAL_VAL_SEED) -> tuple[float, dict[str, float]]:
    """Top-1 on freshly rendered catalog pictures (a seed training never used), through the pipeline's preprocessing."""
    hits: dict[str, list[bool]] = {}
    for label_index, label in enumerate(LABELS):
        images = render_class(label_index, per_class, seed, RENDER_SIZE)
        predictions = classify_all(classifier, iter(images))
        hits[label] = [ranked[0].label == label for ranked in predictions]
    overall = float(np.mean([h for values in hits.values() for h in values]))
    return overall, {label: float(np.mean(values)) for label, values in hits.items()}


def run_lane(classifier: Classifier, events: EventsConfig, scene: LaneScene, frames: int) -> list[tuple[int, ItemEvent]]:
    """Every frame of the lane through the model and the tracker; the events with the frame they fired on."""
    tracker = EventTracker(events)
    fired: list[tuple[int, ItemEvent]] = []
    rendered = (scene.render(n) for n in range(frames))
    for n, ranked in enumerate(classify_all(classifier, rendered)):
        frame = Frame("lane", n + 1, time.time(), time.monotonic(), np.empty((1, 1, 3), np.uint8))
        fired += [(n, event) for event in tracker.update(Result(frame, ranked, classifier.model_id, time.monotonic()))]
    return fired


def score_lane(scene: LaneScene, fired: list[tuple[int, ItemEvent]], frames: int) -> LaneScore:
    """Compare events with the scene's passes: each pass should give exactly one correct item_present."""
    score = LaneScore()
    passes = [p for p in scene.passes_until(frames) if p.next_start <= frames]
    presents = [(n, e) for n, e in fired if e.kind is EventKind.ITEM_PRESENT]
    removed_ids = {e.event_id for _n, e in fired if e.kind is EventKind.ITEM_REMOVED}
    for current in passes:
        inside = [e for n, e in presents if current.start <= n < current.next_start]
        score.passes += 1
        correct = [e for e in inside if e.label == current.product.label]
        if len(inside) == 1 and correct:
            score.exactly_one_correct += 1
        elif not inside:
            score.missed += 1
        elif not correct:
            score.wrong_label += 1
        else:
            score.repeated += 1
        if len(inside) != 1 or not correct:
            score.mistakes.append(f"pass {current.index} ({current.product.label}): {[e.label for e in inside]}")
        score.unpaired_removal += sum(1 for e in correct if e.event_id not in removed_ids)
    return score


def run_evaluation(options, out=sys.stdout) -> int:
    """Print the goal figures for the cached (or freshly trained) demo model."""
    from config.paths import cache_root
    from stream.tools.demo import DEMO_EVENTS, demo_bundle_path, ensure_demo_model

    bundle = ensure_demo_model(demo_bundle_path(options.cache_dir or cache_root()), options.rebuild)
    classifier = bundle.to_classifier()
    events = EventsConfig(**DEMO_EVENTS)
    accuracy, per_class = validation_accuracy(classifier, per_class=100)
    out.write(f"model {bundle.model_id}: top-1 on 1,100 freshly rendered pictures {accuracy * 100:.1f}% (goal 95%)\n")
    out.write("  per class: " + ", ".join(f"{k} {v * 100:.0f}%" for k, v in per_class.items()) + "\n")
    frames = 30 * 60 * 5
    scene = LaneScene(seed=EVAL_LANE_SEED)
    lane = score_lane(scene, run_lane(classifier, events, scene, frames), frames)
    out.write(f"checkout lane (seed {EVAL_LANE_SEED}, {frames // 30} s): {lane.exactly_one_correct}/{lane.passes} passes "
              f"gave exactly one correct item_present = {lane.pass_rate * 100:.1f}% (goal 95%); missed {lane.missed}, "
              f"wrong label {lane.wrong_label}, repeated {lane.repeated}, item_present without item_removed {lane.unpaired_removal}\n")
    for mistake in lane.mistakes[:10]:
        out.write(f"  {mistake}\n")
    empty = LaneScene(seed=EVAL_LANE_SEED + 1, empty=True)
    empty_events = run_lane(classifier, events, empty, 30 * 60 * 2)
    out.write(f"empty lane with hands passing ({30 * 60 * 2 // 30} s): {events_named(empty_events)} (goal 0)\n")
    evaluate_open_catalog(bundle, events, out, trained_lane=(LaneScene(seed=EVAL_LANE_SEED), frames))
    return 0
