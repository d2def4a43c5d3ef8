"""A model served by a real Triton server on loopback: the same top-1 as the local model, over gRPC and HTTP,
uint8 crops on the wire; clear errors for a wrong address or model."""

import contextlib
import time

import numpy as np
import pytest

from capture.catalog_dataset import render_class
from config.schema import ModelConfig
from inference.bundle import load_bundle
from inference.errors import ModelError
from inference.loader import load_classifier
from inference.preprocess import BatchPreprocessor
from inference.remote import parse_remote_spec
from inference.triton_export import TritonSettings, export_triton
from tests.triton_fixture import (
    TritonServer,
    free_port,
    require_triton,
    served_by_python_backend,
)

pytest.importorskip("tritonclient.grpc")

SLOW_SERVER_S = 0.6
"""How long the "slow" model takes per execution: longer than the test's call timeout."""


@pytest.fixture(scope="module")
def triton(tiny_bundle, tmp_path_factory):
    require_triton()
    repository = tmp_path_factory.mktemp("triton-repo")
    classifier = load_bundle(tiny_bundle).to_classifier()
    # Long queue wait for "tiny": on a loaded CI machine the default 100 ms makes the server reject calls, and these
    # tests are about answers, not the queue policy ("slow" keeps the default: its test counts the rejections).
    served_by_python_backend(export_triton(classifier, repository, "tiny", TritonSettings(queue_timeout_us=10_000_000)))
    served_by_python_backend(export_triton(classifier, repository, "slow"), delay_s=SLOW_SERVER_S)
    server = TritonServer(repository, tmp_path_factory.mktemp("triton-scratch"))
    yield server
    server.stop()


def frames() -> list[np.ndarray]:
    return [image for label in range(1, 11) for image in render_class(label, 1, seed=9, out_size=224)]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_served_model_gives_the_local_models_top1_from_uint8_crops(triton, tiny_bundle, protocol):
    port = triton.grpc_port if protocol == "grpc" else triton.http_port
    remote = load_classifier(ModelConfig(spec=f"triton:{protocol}://127.0.0.1:{port}/tiny"))
    local = load_bundle(tiny_bundle).to_classifier()
    assert remote.labels == local.labels and remote.model_id == local.model_id and remote.takes_rgb_uint8
    assert remote.input_spec == local.input_spec
    images = frames()
    crops = BatchPreprocessor(remote.input_spec, len(images), rgb_uint8=True)(images).clone()
    floats = BatchPreprocessor(local.input_spec, len(images))(images).clone()
    expected = local.predict(floats).argmax(1)
    assert remote.predict(crops).argmax(1).tolist() == expected.tolist()
    assert remote.predict(floats[:3]).argmax(1).tolist() == expected[:3].tolist()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_calls_from_several_lanes_at_once_each_get_their_own_answer(triton, tiny_bundle, protocol):
    from concurrent.futures import ThreadPoolExecutor

    port = triton.grpc_port if protocol == "grpc" else triton.http_port
    remote = load_classifier(ModelConfig(spec=f"triton:{protocol}://127.0.0.1:{port}/tiny"))
    images = frames()
    crops = BatchPreprocessor(remote.input_spec, len(images), rgb_uint8=True)(images).clone()
    expected = remote.predict(crops).argmax(1)
    batches = [(start, crops[start:start + 3]) for start in range(0, len(images), 3)] * 3
    with ThreadPoolExecutor(3) as lanes:
        answers = list(lanes.map(lambda item: (item[0], remote.predict(item[1]).argmax(1)), batches))
    assert all(answer.tolist() == expected[start:start + len(answer)].tolist() for start, answer in answers)


def test_a_wrong_model_name_or_a_dead_address_is_a_clear_model_error(triton):
    with pytest.raises(ModelError, match="does not describe the model"):
        load_classifier(ModelConfig(spec=f"triton:grpc://127.0.0.1:{triton.grpc_port}/nosuchmodel"))
    with pytest.raises(ModelError, match="server is up"):
        load_classifier(ModelConfig(spec=f"triton:http://127.0.0.1:{free_port()}/tiny"))


def test_the_call_timeout_comes_from_the_config(triton):
    remote = load_classifier(ModelConfig(spec=f"triton:grpc://127.0.0.1:{triton.grpc_port}/tiny", remote_timeout_ms=250))
    assert remote.timeout_s == 0.25 and remote.backend == "triton"


@pytest.mark.parametrize("spec", ["triton:tiny", "triton:ftp://h:1/m", "triton:grpc://h:1/", "triton:grpc://h:1/a/b"])
def test_malformed_remote_specs_say_the_form(spec):
    with pytest.raises(ModelError, match="triton:grpc://HOST:PORT/MODEL"):
        parse_remote_spec(spec)


def test_a_stream_outlives_the_server_and_resumes_when_it_returns(triton, tiny_bundle):
    """Server killed while two cameras stream: no hang, heartbeats say `unavailable`, the lost frames are counted,
    capture goes on, and results come back once the server does; the pipeline still stops at once."""
    remote = load_classifier(ModelConfig(spec=f"triton:grpc://127.0.0.1:{triton.grpc_port}/tiny"))
    with streaming(remote) as (pipeline, subscriber):
        subscriber.collect_until(lambda _m: len(results(subscriber)) >= 20, 30)
        stopped = time.monotonic()
        triton.kill()
        subscriber.collect_until(lambda _m: model_state(subscriber) == "unavailable", 10)
        noticed_s = time.monotonic() - stopped
        subscriber.collect_until(lambda _m: False, 1)
        during, lost = len(results(subscriber)), heartbeat_dropped(subscriber)
        assert pipeline.stats.failed_batches > 0 and all(capture.is_alive() for capture in pipeline.captures)
        triton.start()
        back = time.monotonic()
        subscriber.collect_until(lambda _m: len(results(subscriber)) > during, 30)
        resumed_s = time.monotonic() - back
        subscriber.collect_until(lambda _m: model_state(subscriber) == "ready", 10)
    print(f"server killed: heartbeats said unavailable after {noticed_s:.2f} s; results {resumed_s:.2f} s after the server was ready")
    assert lost > 0, "frames lost during the outage count as dropped"
    assert len(results(subscriber)) > during, "results did not resume"
    assert model_state(subscriber) == "ready"
    assert pipeline.stopped_in < 2.0


def test_a_fallback_serves_while_the_server_is_down_and_hands_back(triton):
    """model.fallback: a local model answers while the server is away; results name the model that made them."""
    from stream.service.remote_link import RemoteLink
    from tests.fakes import FixedClassifier

    class Fallback(FixedClassifier):
        model_id = "local-fallback"

    spec = f"triton:grpc://127.0.0.1:{triton.grpc_port}/tiny"
    remote = load_classifier(ModelConfig(spec=spec))
    with streaming(remote) as (pipeline, subscriber):
        link = RemoteLink(pipeline.model, ModelConfig(spec=spec), pipeline.stop, remote, Fallback())
        link.start()
        subscriber.collect_until(lambda _m: len(results(subscriber)) >= 20, 30)
        triton.stop()
        subscriber.collect_until(lambda _m: len(results(subscriber, "local-fallback")) >= 20, 20)
        triton.start()
        back = time.monotonic()
        subscriber.collect_until(lambda _m: results(subscriber)[-1]["model"] == remote.model_id, 30)
        handed_back_s = time.monotonic() - back
    print(f"remote results again {handed_back_s:.2f} s after the server was ready")
    models = [r["model"] for r in results(subscriber)]
    assert models[0] == remote.model_id and "local-fallback" in models and models[-1] == remote.model_id
    assert not link.is_alive()


def test_a_slow_server_costs_counted_timeouts_and_rejections_but_never_capture(triton):
    """Every call bounded by model.remote_timeout_ms: the lanes give up, the frames are counted as dropped, the
    model is unavailable, the cameras keep their pace and the pipeline still stops at once."""
    slow = load_classifier(ModelConfig(spec=f"triton:grpc://127.0.0.1:{triton.grpc_port}/slow", remote_timeout_ms=300))
    with streaming(slow) as (pipeline, subscriber):
        started = time.monotonic()
        subscriber.collect_until(lambda _m: pipeline.stats.failed_batches >= 6 and model_state(subscriber) == "unavailable", 20)
        seconds = time.monotonic() - started
        captured = [status.snapshot().captured for status in pipeline.statuses]
    assert pipeline.stats.failed_batches >= 6 and model_state(subscriber) == "unavailable"
    assert any(word in pipeline.stats.last_error.lower() for word in ("deadline", "timeout", "exceeded", "rejected"))
    assert heartbeat_dropped(subscriber) > 0
    assert min(captured) >= 0.5 * 30 * seconds, f"capture slowed down: {captured} frames in {seconds:.1f} s"
    assert pipeline.stopped_in < 2.0


def results(subscriber, model: str = "") -> list[dict]:
    return [r for r in subscriber.of_type("result") if not model or r["model"] == model]


def model_state(subscriber) -> str:
    heartbeats = subscriber.of_type("heartbeat")
    return heartbeats[-1]["model"]["state"] if heartbeats else ""


def heartbeat_dropped(subscriber) -> int:
    return sum(camera["dropped"] for camera in subscriber.of_type("heartbeat")[-1]["cameras"].values())


@contextlib.contextmanager
def streaming(classifier):
    """A pipeline with two 30 fps synthetic cameras on `classifier`, and a subscriber; `pipeline.stopped_in` is how
    long its shutdown took."""
    import threading

    from stream.pipeline.app import Pipeline
    from tests.conftest import make_config
    from tests.fakes import Subscriber

    config = make_config([{"id": "a", "source": "synthetic", "fps": 30}, {"id": "b", "source": "synthetic", "fps": 30}])
    pipeline = Pipeline(config, classifier, threading.Event())
    pipeline.start()
    subscriber = Subscriber(pipeline.publisher.endpoint)
    try:
        yield pipeline, subscriber
    finally:
        started = time.monotonic()
        pipeline.shutdown()
        pipeline.stopped_in = time.monotonic() - started
        subscriber.close()
