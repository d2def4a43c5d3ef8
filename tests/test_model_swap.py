"""Swapping the model between batches: no gap, no lost frame, results and heartbeats name the model in use."""

import threading

from stream.pipeline.app import Pipeline
from stream.pipeline.model_slot import ModelSlot, ModelState
from tests.conftest import make_config
from tests.fakes import FixedClassifier, Subscriber, tiny_classifier, wait_for


class NamedClassifier(FixedClassifier):
    def __init__(self, model_id: str, labels=("apple", "banana"), **kwargs) -> None:
        super().__init__(labels, **kwargs)
        self.model_id = model_id
        self.backend, self.precision = "torch", "int8" if model_id.endswith("fast") else "fp32"


def test_a_swap_between_batches_leaves_no_gap_and_results_name_the_new_model():
    config = make_config([{"id": "a", "source": "synthetic"}, {"id": "b", "source": "synthetic"}],
                         skip={"enabled": "off"})
    first, second = NamedClassifier("model-slow"), NamedClassifier("model-fast", labels=("x", "y", "z"))
    pipeline = Pipeline(config, first, threading.Event())
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint)
    try:
        subscriber.collect_until(lambda _m: len(subscriber.of_type("result")) >= 20, 20)
        pipeline.model.swap(second)
        subscriber.collect_until(lambda _m: sum(r["model"] == "model-fast" for r in subscriber.of_type("result")) >= 20
                                 and subscriber.of_type("heartbeat")[-1]["model"]["id"] == "model-fast", 20)
    finally:
        pipeline.shutdown()
        subscriber.close()
    messages = [payload for _topic, payload in subscriber.messages]
    assert [m["seq"] for m in messages] == list(range(messages[0]["seq"], messages[0]["seq"] + len(messages)))
    results = subscriber.of_type("result")
    models = [r["model"] for r in results]
    switch = models.index("model-fast")
    assert set(models[:switch]) == {"model-slow"} and set(models[switch:]) == {"model-fast"}
    assert all(r["topk"][0]["label"] == "x" for r in results[switch:])
    for camera in ("a", "b"):
        frame_seqs = [r["frame_seq"] for r in results if r["camera"] == camera]
        assert frame_seqs == sorted(frame_seqs) and len(set(frame_seqs)) == len(frame_seqs)
    heartbeat = subscriber.of_type("heartbeat")[-1]["model"]
    assert heartbeat == {"id": "model-fast", "backend": "torch", "precision": "int8", "state": "ready", "optimizing": False}
    assert {m["boot"] for m in messages} == {messages[0]["boot"]}


def test_a_model_with_another_input_size_gets_buffers_of_its_size():
    config = make_config(skip={"enabled": "off"})
    pipeline = Pipeline(config, FixedClassifier(), threading.Event())
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint)
    try:
        subscriber.collect_until(lambda _m: len(subscriber.of_type("result")) >= 3, 20)
        pipeline.model.swap(tiny_classifier(crop=64))
        subscriber.collect_until(lambda _m: any(r["model"] == "tiny-test" for r in subscriber.of_type("result")), 20)
    finally:
        pipeline.shutdown()
        subscriber.close()
    assert any(r["model"] == "tiny-test" for r in subscriber.of_type("result"))
    assert pipeline.stats.failed_batches == 0


def test_reused_results_of_the_old_model_are_not_carried_over_a_swap():
    config = make_config(skip={"enabled": "on", "max_reuse": 1000})
    pipeline = Pipeline(config, NamedClassifier("model-slow"), threading.Event())
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint)
    try:
        subscriber.collect_until(lambda _m: len(subscriber.of_type("result")) >= 5, 20)
        pipeline.model.swap(NamedClassifier("model-new", labels=("x", "y")))
        subscriber.collect_until(lambda _m: sum(r["model"] == "model-new" for r in subscriber.of_type("result")) >= 5, 20)
    finally:
        pipeline.shutdown()
        subscriber.close()
    models = [r["model"] for r in subscriber.of_type("result")]
    switch = models.index("model-new")
    assert set(models[switch:]) == {"model-new"}


def test_the_slot_reports_loading_until_a_model_is_set_and_what_runs_after():
    slot = ModelSlot()
    assert slot.status().state is ModelState.LOADING and slot.status().wire()["state"] == "loading"
    slot.swap(tiny_classifier())
    slot.set_optimizing(True)
    status = slot.status()
    assert status.wire() == {"id": "tiny-test", "backend": "torch", "precision": "fp32", "state": "ready", "optimizing": True}
    assert status.describe() == "model tiny-test on torch fp32, optimizing"


def test_frames_wait_for_a_model_and_flow_once_it_is_set():
    slot = ModelSlot()
    pipeline = Pipeline(make_config(), slot, threading.Event())
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint)
    try:
        subscriber.collect_until(lambda _m: len(subscriber.of_type("heartbeat")) >= 2, 10)
        assert not subscriber.of_type("result")
        assert subscriber.of_type("heartbeat")[-1]["model"]["state"] == "loading"
        slot.swap(FixedClassifier())
        assert wait_for(lambda: pipeline.stats.classified("cam0") > 0, 10)
    finally:
        pipeline.shutdown()
        subscriber.close()


class RecordingModels:
    """Stands in for the ModelManager: records which models a reload asked for."""

    def __init__(self, accept: bool = True) -> None:
        from stream.pipeline.model_slot import ModelSlot

        self.slot, self.asked, self._accept = ModelSlot(), [], accept

    def reload(self, model) -> bool:
        self.asked.append(model.spec)
        return self._accept


def test_a_reload_applies_model_changes_and_names_the_rest_as_needing_a_restart(caplog):
    from stream.service.reload import ReloadThread, changed_sections

    old = make_config([{"id": "cam0", "source": "synthetic"}], model={"spec": "a.bundle"})
    new = make_config([{"id": "cam0", "source": "synthetic"}, {"id": "cam1", "source": "synthetic"}],
                      model={"spec": "b.bundle", "lanes": 1})
    assert changed_sections(old, new) == ["cameras", "model.lanes", "model"]
    models = RecordingModels()
    reloader = ReloadThread(old, lambda: new, models, threading.Event(), threading.Event())
    caplog.set_level("INFO")
    config = reloader.reload_once()
    assert models.asked == ["b.bundle"] and config.model.spec == "b.bundle"
    assert config.model.lanes == old.model.lanes and config.cameras == old.cameras
    assert "[cameras], [model.lanes] need a restart" in caplog.text


def test_a_refused_model_or_an_invalid_file_changes_nothing(caplog):
    from config.loader import ConfigError
    from stream.service.reload import ReloadThread

    old = make_config([{"id": "cam0", "source": "synthetic"}], model={"spec": "a.bundle"})
    new = make_config([{"id": "cam0", "source": "synthetic"}], model={"spec": "broken.bundle"})
    models = RecordingModels(accept=False)
    assert ReloadThread(old, lambda: new, models, threading.Event(), threading.Event()).reload_once().model.spec == "a.bundle"

    def invalid():
        raise ConfigError("cameras: field required")

    caplog.set_level("INFO")
    assert ReloadThread(old, invalid, models, threading.Event(), threading.Event()).reload_once() is old
    assert models.asked == ["broken.bundle"] and "configuration is invalid" in caplog.text
    assert "invalid configuration" in models.slot.status().note


class OutageClassifier(NamedClassifier):
    """Raises while `down` is set, like a model server that stopped answering."""

    def __init__(self) -> None:
        super().__init__("model-remote")
        self.down = threading.Event()

    def predict(self, batch):
        if self.down.is_set():
            raise ConnectionError("server unreachable")
        return super().predict(batch)


def test_a_model_whose_calls_fail_is_unavailable_until_one_succeeds_and_its_frames_count_as_dropped():
    config = make_config([{"id": "a", "source": "synthetic", "fps": 30}], skip={"enabled": "off"})
    model = OutageClassifier()
    pipeline = Pipeline(config, model, threading.Event())
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint, topics=("heartbeat",))
    state = lambda: subscriber.of_type("heartbeat")[-1]["model"]["state"] if subscriber.of_type("heartbeat") else ""  # noqa: E731
    try:
        subscriber.collect_until(lambda _m: state() == "ready", 10)
        model.down.set()
        subscriber.collect_until(lambda _m: state() == "unavailable", 10)
        down = subscriber.of_type("heartbeat")[-1]
        report = pipeline.health.check()
        model.down.clear()
        subscriber.collect_until(lambda _m: state() == "ready", 10)
    finally:
        pipeline.shutdown()
        subscriber.close()
    assert down["model"]["state"] == "unavailable" and down["cameras"]["a"]["dropped"] > 0
    assert report.healthy and report.warnings == ("model model-remote unavailable: ConnectionError: server unreachable",)
    assert state() == "ready" and pipeline.health.check().warnings == ()


def test_a_failure_of_a_model_swapped_out_does_not_mark_the_new_one_unavailable():
    first, second = NamedClassifier("old"), NamedClassifier("new")
    slot = ModelSlot(first)
    slot.swap(second)
    slot.report(first, ok=False)
    assert slot.status().state is ModelState.READY
    slot.report(second, ok=False)
    assert slot.status().state is ModelState.UNAVAILABLE and "(unavailable)" in slot.status().describe()
    slot.report(second, ok=True)
    assert slot.status().state is ModelState.READY


class ConcurrencyProbe(NamedClassifier):
    """A slow model that records how many calls ran at once (a served model waiting on the network)."""

    def __init__(self) -> None:
        super().__init__("model-remote", delay_s=0.1)
        self._lock, self.running, self.most = threading.Lock(), 0, 0

    def predict(self, batch):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().predict(batch)
        finally:
            with self._lock:
                self.running -= 1


def test_a_served_model_gets_remote_inflight_batches_at_once_and_results_stay_in_capture_order():
    config = make_config([{"id": "a", "source": "synthetic", "fps": 30}, {"id": "b", "source": "synthetic", "fps": 30}],
                         skip={"enabled": "off"}, model={"spec": "triton:grpc://127.0.0.1:1/m", "remote_inflight": 3})
    model = ConcurrencyProbe()
    pipeline = Pipeline(config, model, threading.Event())
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint, topics=("result",))
    try:
        subscriber.collect_until(lambda _m: len(subscriber.of_type("result")) >= 60, 20)
    finally:
        pipeline.shutdown()
        subscriber.close()
    assert model.most == 3
    results = subscriber.of_type("result")
    for camera in ("a", "b"):
        frame_seqs = [r["frame_seq"] for r in results if r["camera"] == camera]
        assert len(frame_seqs) > 20 and frame_seqs == sorted(frame_seqs)
