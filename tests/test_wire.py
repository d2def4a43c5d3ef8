"""The wire format of DESIGN.md, message by message."""

import json
import time

import numpy as np

from capture.frame import Frame
from inference.topk import Prediction
from stream.pipeline.result import EventKind, ItemEvent, Result
from stream.wire.encoder import WireEncoder

ENVELOPE = {"v", "type", "seq", "ts", "boot"}


def decode(message):
    topic, payload = message
    return topic.decode("ascii"), json.loads(payload.decode("utf-8"))


def sample_result(reused=False) -> Result:
    frame = Frame("cam0", 42, 1_700_000_000.5, time.monotonic(), np.zeros((2, 2, 3), np.uint8))
    predictions = (Prediction("cola", 1, 0.8), Prediction("chips", 2, 0.15))
    return Result(frame, predictions, "resnet18-imagenet1k-v1", time.monotonic(), reused=reused)


def test_a_result_of_the_open_catalog_carries_its_unknown_score_and_sources():
    frame = Frame("cam0", 43, 1_700_000_000.5, time.monotonic(), np.zeros((2, 2, 3), np.uint8))
    ranked = (Prediction("oat milk", 11, 0.91, "gallery"), Prediction("milk carton", 9, 0.06))
    result = Result(frame, ranked, "shop-1", time.monotonic(), unknown_score=0.421234, unknown=False)
    _topic, payload = decode(WireEncoder("boot1").result(result, 5.0, stale=False))
    assert [p["source"] for p in payload["topk"]] == ["gallery", "head"]
    assert payload["unknown_score"] == 0.4212 and payload["unknown"] is False


def test_result_message_has_every_field():
    topic, payload = decode(WireEncoder("boot1", clock=lambda: 123.0).result(sample_result(), 12.345, stale=False))
    assert topic == "result/cam0"
    assert set(payload) == ENVELOPE | {"camera", "frame_seq", "captured_at", "latency_ms", "model", "topk"}
    assert payload["v"] == 1 and payload["type"] == "result" and payload["boot"] == "boot1" and payload["ts"] == 123.0
    assert payload["frame_seq"] == 42 and payload["captured_at"] == 1_700_000_000.5 and payload["latency_ms"] == 12.35
    assert payload["topk"] == [{"label": "cola", "index": 1, "score": 0.8, "source": "head"},
                               {"label": "chips", "index": 2, "score": 0.15, "source": "head"}]


def test_reused_and_stale_flags_appear_only_when_true():
    _topic, payload = decode(WireEncoder("b").result(sample_result(reused=True), 900.0, stale=True))
    assert payload["reused"] is True and payload["stale"] is True


def test_a_frame_decided_by_the_second_look_says_so_and_others_do_not():
    from dataclasses import replace

    _topic, plain = decode(WireEncoder("b").result(sample_result(), 10.0, stale=False))
    _topic, looked = decode(WireEncoder("b").result(replace(sample_result(), second_look=True), 10.0, stale=False))
    assert "second_look" not in plain and looked["second_look"] is True


def test_a_frame_whose_keypoints_did_not_confirm_its_label_says_so_and_others_do_not():
    from dataclasses import replace

    _topic, plain = decode(WireEncoder("b").result(sample_result(), 10.0, stale=False))
    _topic, doubted = decode(WireEncoder("b").result(replace(sample_result(), unconfirmed=True), 10.0, stale=False))
    assert "unconfirmed" not in plain and doubted["unconfirmed"] is True


def test_event_message():
    event = ItemEvent("cam1", EventKind.ITEM_REMOVED, "e1", "cola", 1, 0.91, 30)
    topic, payload = decode(WireEncoder("b").event(event))
    assert topic == "event/cam1"
    assert payload["type"] == "event" and payload["event"] == "item_removed" and payload["event_id"] == "e1"
    assert set(payload) == ENVELOPE | {"camera", "event", "event_id", "label", "index", "score", "frames"}


def test_item_unknown_message_has_no_label_and_carries_the_pick_list():
    picks = (Prediction("oat milk", 11, 0.41, "gallery"), Prediction("milk carton", 3, 0.3))
    event = ItemEvent("lane", EventKind.ITEM_UNKNOWN, "e9", None, -1, 0.997, 6, picks, "unknown")
    _topic, payload = decode(WireEncoder("b").event(event))
    assert payload["event"] == "item_unknown" and payload["label"] is None and payload["index"] == -1
    assert payload["reason"] == "unknown"
    assert payload["candidates"] == [{"label": "oat milk", "index": 11, "score": 0.41, "source": "gallery"},
                                     {"label": "milk carton", "index": 3, "score": 0.3, "source": "head"}]


def test_heartbeat_message():
    cameras = {"cam0": {"state": "streaming", "captured": 5, "dropped": 0, "classified": 5, "fps": 30.0, "item": None}}
    topic, payload = decode(WireEncoder("b").heartbeat(1.5, cameras))
    assert topic == "heartbeat" and payload["type"] == "heartbeat" and payload["uptime_s"] == 1.5
    assert payload["cameras"] == cameras


def test_seq_counts_every_message_across_types():
    encoder = WireEncoder("b")
    messages = [encoder.result(sample_result(), 1, False), encoder.heartbeat(0, {}),
                encoder.event(ItemEvent("c", EventKind.ITEM_PRESENT, "e", "x", 0, 1.0, 3))]
    assert [decode(m)[1]["seq"] for m in messages] == [1, 2, 3]
