"""A served model's link to its server: starting while the server is down, the local fallback while it is away,
and the hand-back when it answers again. The link's logic with a stand-in server here; the real server in
test_remote.py."""

import threading

from config.schema import ModelConfig
from inference.backends.choice import BACKENDS
from inference.remote import RemoteSpec, ServerUnreachable
from stream.pipeline.model_slot import ModelSlot, ModelState
from stream.service.remote_link import RemoteLink
from tests.fakes import FixedClassifier

SPEC = "triton:grpc://127.0.0.1:1/tiny"


class StandInRemote(FixedClassifier):
    """A served model whose server is up while `up` is set."""

    model_id = "remote-model"

    def __init__(self, up: threading.Event) -> None:
        super().__init__()
        self.spec, self.up = RemoteSpec("grpc", "127.0.0.1:1", "tiny"), up

    def ready(self) -> bool:
        return self.up.is_set()


class StandInServer:
    """`connect` for the link: ServerUnreachable until `up` is set, then the served model."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.remote = StandInRemote(self.up)

    def connect(self, spec, model):
        if not self.up.is_set():
            raise ServerUnreachable(f"{spec}: the server does not answer")
        return self.remote


class Fallback(FixedClassifier):
    model_id = "local-fallback"


def link(slot: ModelSlot, server: StandInServer, remote=None, fallback=None) -> RemoteLink:
    return RemoteLink(slot, ModelConfig(spec=SPEC), threading.Event(), remote, fallback, connect=server.connect)


def test_a_server_down_at_start_leaves_the_model_unavailable_until_it_answers():
    slot, server = ModelSlot(), StandInServer()
    watcher = link(slot, server)
    watcher.step()
    assert slot.current is None and slot.status().state is ModelState.UNAVAILABLE
    server.up.set()
    watcher.step()
    assert slot.current is server.remote and slot.status().state is ModelState.READY


def test_a_fallback_serves_from_the_start_while_the_server_is_down_and_hands_back_when_it_answers():
    slot, server, fallback = ModelSlot(), StandInServer(), Fallback()
    watcher = link(slot, server, fallback=fallback)
    watcher.step()
    assert slot.current is fallback and "fallback local-fallback serves" in slot.status().note
    server.up.set()
    watcher.step()
    assert slot.current is server.remote and slot.status().note == ""


def test_the_fallback_takes_over_while_the_servers_calls_fail_and_the_server_gets_it_back():
    server, fallback = StandInServer(), Fallback()
    server.up.set()
    slot = ModelSlot(server.remote)
    watcher = link(slot, server, remote=server.remote, fallback=fallback)
    watcher.step()
    assert slot.current is server.remote
    server.up.clear()
    slot.report(server.remote, ok=False)  # a batch failed
    watcher.step()
    assert slot.current is fallback and slot.status().state is ModelState.READY
    watcher.step()
    assert slot.current is fallback, "stays on the fallback while the server does not answer"
    server.up.set()
    watcher.step()
    assert slot.current is server.remote and slot.status().state is ModelState.READY
    watcher.step()
    assert slot.current is server.remote, "its failures before the outage ended do not send it back to the fallback"


def test_without_a_fallback_a_failing_server_stays_in_place_and_unavailable():
    server = StandInServer()
    slot = ModelSlot(server.remote)
    watcher = link(slot, server, remote=server.remote)
    slot.report(server.remote, ok=False)
    watcher.step()
    assert slot.current is server.remote and slot.status().state is ModelState.UNAVAILABLE


def test_a_model_swapped_in_by_a_reload_is_left_alone():
    server, fallback, other = StandInServer(), Fallback(), FixedClassifier()
    server.up.set()
    slot = ModelSlot(server.remote)
    watcher = link(slot, server, remote=server.remote, fallback=fallback)
    slot.swap(other)
    slot.report(other, ok=False)
    watcher.step()
    assert slot.current is other


def test_the_link_thread_stops_at_once():
    slot, server, stop = ModelSlot(), StandInServer(), threading.Event()
    watcher = RemoteLink(slot, ModelConfig(spec=SPEC), stop, None, connect=server.connect, interval_s=0.01)
    watcher.start()
    server.up.set()
    stop.set()
    watcher.join(1.0)
    assert not watcher.is_alive()


def run_against_a_dead_server(tmp_path, fallback: str = "") -> tuple[list, list[str], int]:
    """`streamrec run` with a served model whose server is not there; (heartbeats and results, log, exit code)."""
    from tests.conftest import cli_env
    from tests.fakes import Subscriber
    from tests.test_cli_lifecycle import RunningCli, free_port

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "streamrec.toml"
    config.write_text(f'[[cameras]]\nid = "a"\nsource = "synthetic"\nfps = 30\n\n[publisher]\nendpoint = "{endpoint}"\n\n'
                      f'[model]\nspec = "triton:grpc://127.0.0.1:{free_port()}/tiny"\n{fallback}')
    run = RunningCli("run", "--config", str(config), "--headless", "--duration", "6", env=cli_env())
    with Subscriber(endpoint) as subscriber:
        subscriber.collect_until(lambda _m: run.process.poll() is not None, 60)
    run.process.wait(10)
    return subscriber.messages, run.lines, run.process.returncode


def test_streamrec_run_starts_while_the_server_is_down_and_says_the_model_is_unavailable(tmp_path):
    messages, lines, code = run_against_a_dead_server(tmp_path)
    heartbeats = [m for topic, m in messages if topic == "heartbeat"]
    assert code == 0 and heartbeats and not [m for topic, m in messages if topic.startswith("result")]
    assert all(h["model"]["state"] == "unavailable" for h in heartbeats[1:])
    assert any("the server does not answer" in line and "starting without it" in line for line in lines)


def test_streamrec_run_serves_the_fallback_while_the_server_is_down(tmp_path, tiny_bundle):
    messages, lines, code = run_against_a_dead_server(tmp_path, f'fallback = "{tiny_bundle}"\n')
    results = [m for topic, m in messages if topic.startswith("result")]
    heartbeats = [m for topic, m in messages if topic == "heartbeat"]
    assert code == 0 and len(results) > 10
    assert {r["model"] for r in results} == {heartbeats[-1]["model"]["id"]} != {""}
    assert heartbeats[-1]["model"]["state"] == "ready" and heartbeats[-1]["model"]["backend"] in BACKENDS
    assert any("(model.fallback) serves until it does" in line for line in lines)
