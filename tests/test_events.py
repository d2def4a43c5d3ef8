"""The stable-item tracker on scripted result sequences."""

import itertools
import time

import numpy as np

from capture.frame import Frame
from config.schema import EventsConfig
from inference.topk import Prediction
from stream.pipeline.events import EventTracker
from stream.pipeline.result import EventKind, Result

IMAGE = np.zeros((4, 4, 3), np.uint8)
LABELS = ["empty", "cola", "chips", "milk"]


def result(label: str, score: float, camera: str = "cam0") -> Result:
    index = LABELS.index(label)
    frame = Frame(camera, 0, time.time(), time.monotonic(), IMAGE)
    return Result(frame, (Prediction(label, index, score),), "test", time.monotonic())


def feed(tracker: EventTracker, sequence, camera="cam0", stale=False):
    events = []
    for label, score in sequence:
        events += tracker.update(result(label, score, camera), stale)
    return events


def tracker(**options) -> EventTracker:
    counter = itertools.count(1)
    config = EventsConfig(enter_frames=3, exit_frames=2, min_score=0.6, exit_score=0.3, **options)
    return EventTracker(config, new_id=lambda: f"ev{next(counter)}")


def test_item_enters_holds_and_leaves_once():
    events = feed(tracker(), [("cola", 0.9)] * 10 + [("empty", 0.9)] * 3)
    assert [(e.kind, e.label, e.event_id) for e in events] == [
        (EventKind.ITEM_PRESENT, "cola", "ev1"), (EventKind.ITEM_REMOVED, "cola", "ev1")]
    assert events[1].frames == 10


def test_too_few_frames_make_no_event():
    assert feed(tracker(), [("cola", 0.9)] * 2 + [("chips", 0.9)] * 2) == []


def test_low_scores_never_make_an_item():
    assert feed(tracker(), [("cola", 0.5)] * 20) == []


def test_flicker_to_another_label_for_one_frame_keeps_the_item():
    sequence = [("cola", 0.9)] * 4 + [("chips", 0.7)] + [("cola", 0.9)] * 4 + [("chips", 0.7)] + [("cola", 0.8)] * 3
    events = feed(tracker(), sequence)
    assert [e.kind for e in events] == [EventKind.ITEM_PRESENT]


def test_score_dipping_between_exit_and_min_score_keeps_the_item():
    events = feed(tracker(), [("cola", 0.9)] * 3 + [("cola", 0.4)] * 10)
    assert [e.kind for e in events] == [EventKind.ITEM_PRESENT]


def test_ignored_labels_never_become_items():
    events = feed(tracker(ignore_labels=("empty",)), [("empty", 0.99)] * 10)
    assert events == []


def test_stale_results_never_create_an_item():
    assert feed(tracker(), [("cola", 0.9)] * 10, stale=True) == []


def test_two_cameras_are_tracked_independently():
    events_tracker = tracker()
    a = feed(events_tracker, [("cola", 0.9)] * 3, camera="a")
    b = feed(events_tracker, [("milk", 0.9)] * 2, camera="b")
    assert [e.label for e in a] == ["cola"] and b == []
    assert events_tracker.current_item("a") == "cola" and events_tracker.current_item("b") is None


def test_new_item_after_removal_gets_a_new_event_id():
    events = feed(tracker(), [("cola", 0.9)] * 3 + [("empty", 0.9)] * 2 + [("cola", 0.9)] * 3)
    assert [e.event_id for e in events] == ["ev1", "ev1", "ev2"]


def unknown(guesses=(("cola", 0.5), ("milk", 0.3)), score=0.999, camera="cam0") -> Result:
    frame = Frame(camera, 0, time.time(), time.monotonic(), IMAGE)
    topk = tuple(Prediction(label, LABELS.index(label), s, "gallery" if label == "milk" else "head") for label, s in guesses)
    return Result(frame, topk, "test", time.monotonic(), unknown_score=score, unknown=True)


def test_a_stable_unknown_item_makes_item_unknown_with_a_pick_list_never_item_present():
    events_tracker = tracker(unknown_frames=3)
    frames = [unknown()] * 2 + [unknown((("milk", 0.7), ("chips", 0.2)))] * 4
    events = [e for r in frames for e in events_tracker.update(r)]
    assert [(e.kind, e.label, e.index) for e in events] == [(EventKind.ITEM_UNKNOWN, None, -1)]
    picks = events[0].candidates
    assert [p.label for p in picks] == ["milk", "cola", "chips"] and picks[0].source == "gallery"
    assert abs(picks[0].score - (0.3 * 2 + 0.7) / 3) < 1e-9 and events[0].score > 0.99
    assert events_tracker.current_item("cam0") is None
    assert events_tracker.item_caption("cam0") == "unknown item - attendant (milk, cola, chips?)"
    gone = feed(events_tracker, [("empty", 0.9)] * 2)
    assert [(e.kind, e.event_id) for e in gone] == [(EventKind.ITEM_REMOVED, events[0].event_id)]


def test_an_unknown_item_needs_twice_enter_frames_so_a_passing_hand_calls_no_attendant():
    brief = tracker(ignore_labels=("empty",))
    passing_hand = [unknown()] * 5 + [result("empty", 0.9)] * 3
    assert [e for r in passing_hand for e in brief.update(r)] == []
    put_down = [unknown()] * 6
    assert [e.kind for r in put_down for e in brief.update(r)] == [EventKind.ITEM_UNKNOWN]
    assert EventsConfig(enter_frames=4).frames_for_unknown == 8
    assert EventsConfig(enter_frames=4, unknown_frames=5).frames_for_unknown == 5
    assert EventsConfig(enter_frames=4).frames_for_ambiguous == 12
    assert EventsConfig(enter_frames=4, unknown_frames=5).frames_for_ambiguous == 9
    assert EventsConfig(enter_frames=4, ambiguous_frames=6).frames_for_ambiguous == 6


def test_unknown_frames_never_count_towards_a_label_even_with_a_confident_head():
    events_tracker = tracker()
    mixed = [result("cola", 0.95), result("cola", 0.95), unknown((("cola", 0.95),)), result("cola", 0.95),
             result("cola", 0.95)]
    assert [e for r in mixed for e in events_tracker.update(r)] == []
    assert [e.kind for e in feed(events_tracker, [("cola", 0.95)])] == [EventKind.ITEM_PRESENT]


def test_an_unknown_item_stays_one_item_through_a_known_looking_frame_and_a_known_item_is_not_flagged_later():
    events_tracker = tracker(unknown_frames=3)
    sequence = [unknown()] * 3 + [result("cola", 0.9)] + [unknown()] * 3
    assert [e.kind for r in sequence for e in events_tracker.update(r)] == [EventKind.ITEM_UNKNOWN]
    known = tracker()
    sequence = [result("cola", 0.9)] * 3 + [unknown((("cola", 0.9),))] * 5
    assert [e.kind for r in sequence for e in known.update(r)] == [EventKind.ITEM_PRESENT]
    assert known.item_caption("cam0") == "cola"


def split(guesses=(("cola", 0.45), ("milk", 0.35), ("chips", 0.1)), score=0.1, camera="cam0") -> Result:
    """A frame that looks like known products but that no label holds with min_score."""
    frame = Frame(camera, 0, time.time(), time.monotonic(), IMAGE)
    topk = tuple(Prediction(label, LABELS.index(label), s) for label, s in guesses)
    return Result(frame, topk, "test", time.monotonic(), unknown_score=score, unknown=False)


def test_an_item_split_between_known_products_asks_for_a_pick_instead_of_passing_silently():
    events_tracker = tracker(unknown_frames=4)  # asks after unknown_frames + enter_frames = 7 split frames
    assert [e for r in [split()] * 6 for e in events_tracker.update(r)] == []
    events = events_tracker.update(split())
    assert [(e.kind, e.reason) for e in events] == [(EventKind.ITEM_UNKNOWN, "ambiguous")]
    assert [p.label for p in events[0].candidates] == ["cola", "milk", "chips"]
    assert abs(events[0].score - 0.1) < 1e-9
    assert events_tracker.item_caption("cam0") == "which one? cola, milk, chips - attendant"
    assert [e.kind for r in [split()] * 5 + [unknown()] * 20 for e in events_tracker.update(r)] == []  # one item
    assert events_tracker.item_caption("cam0") == "which one? cola, milk, chips - attendant"  # as announced
    assert [e.kind for e in feed(events_tracker, [("empty", 0.9)] * 2)] == [EventKind.ITEM_REMOVED]


def test_a_product_split_while_it_moves_in_and_then_settling_into_one_label_is_charged_without_a_pick():
    """Half in view, a product is split between look-alikes; at rest one label holds it: no pick list first."""
    events_tracker = tracker(unknown_frames=4)
    sequence = [split()] * 6 + [result("cola", 0.9)] * 3
    assert [(e.kind, e.label) for r in sequence for e in events_tracker.update(r)] == [(EventKind.ITEM_PRESENT, "cola")]
    hasty = tracker(unknown_frames=4, ambiguous_frames=4)
    assert [e.kind for r in sequence for e in hasty.update(r)][:1] == [EventKind.ITEM_UNKNOWN]


def test_a_split_frame_is_not_ambiguous_when_it_is_unlike_known_products_shows_an_ignored_label_or_has_no_score():
    cases = [split(score=0.95),  # unlike every known product: a hand, not a pick
             split((("cola", 0.45), ("empty", 0.35), ("milk", 0.1))),  # perhaps nothing there
             split((("cola", 0.3), ("milk", 0.2), ("chips", 0.05))),  # nothing near min_score even together
             result("cola", 0.5)]  # a model without feature statistics: no unknown_score
    for case in cases:
        assert [e for r in [case] * 10 for e in tracker(ignore_labels=("empty",), unknown_frames=4).update(r)] == []
    off = tracker(ambiguous_items=False, unknown_frames=4)
    assert [e for r in [split()] * 10 for e in off.update(r)] == []


def test_a_run_mostly_unlike_known_products_is_unknown_and_a_confident_frame_ends_a_split_run():
    mixed = tracker(unknown_frames=4)
    events = [e for r in [unknown(), unknown(), unknown(), split()] for e in mixed.update(r)]
    assert [(e.kind, e.reason) for e in events] == [(EventKind.ITEM_UNKNOWN, "unknown")]
    settling = tracker(unknown_frames=4)
    sequence = [split()] * 3 + [result("cola", 0.9)] * 3
    assert [(e.kind, e.label) for r in sequence for e in settling.update(r)] == [(EventKind.ITEM_PRESENT, "cola")]


def test_a_present_item_stays_one_item_through_frames_split_between_it_and_look_alikes():
    """A look-alike pair the second look decides while the item moves in, but not on every frame at rest: one
    item_present, never a pick or a second charge."""
    events_tracker = tracker(unknown_frames=4)
    sequence = [result("cola", 0.9)] * 3 + [split()] * 10 + [result("cola", 0.9)] * 2 + [split()] * 10
    assert [(e.kind, e.label) for r in sequence for e in events_tracker.update(r)] == [(EventKind.ITEM_PRESENT, "cola")]
    assert [e.kind for e in feed(events_tracker, [("empty", 0.9)] * 2)] == [EventKind.ITEM_REMOVED]
    other = tracker(unknown_frames=4)
    sequence = [result("chips", 0.9)] * 3 + [split((("cola", 0.45), ("milk", 0.35), ("empty", 0.1)))] * 10
    assert [e.kind for r in sequence for e in other.update(r)] == [  # split without chips: another item
        EventKind.ITEM_PRESENT, EventKind.ITEM_REMOVED, EventKind.ITEM_UNKNOWN]
