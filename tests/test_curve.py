"""CurveZMQ on the publisher: only clients with the server key AND an allow-listed key receive anything."""

import stat
import threading
from functools import partial
from pathlib import Path

import pytest
import zmq

from config.loader import ConfigError
from stream.pipeline.app import Pipeline
from stream.wire.curve import generate_keypair, secure_client
from stream.wire.errors import CurveKeyError
from tests.conftest import cli_env, make_config, run_cli
from tests.fakes import FixedClassifier, Subscriber


@pytest.fixture
def keys(tmp_path) -> dict[str, Path]:
    """A server pair, an allow-listed POS pair (public key in clients/), an outsider pair and a stranger server's pair."""
    clients = tmp_path / "clients"
    clients.mkdir()
    server_public, server_secret = generate_keypair(tmp_path / "server", "server")
    pos_public, pos_secret = generate_keypair(tmp_path / "pos", "pos1")
    (clients / pos_public.name).write_bytes(pos_public.read_bytes())
    _, outsider_secret = generate_keypair(tmp_path / "outsider", "outsider")
    stranger_public, _ = generate_keypair(tmp_path / "stranger", "server")
    return {"server_public": server_public, "server_secret": server_secret, "clients": clients,
            "pos_secret": pos_secret, "outsider_secret": outsider_secret, "stranger_public": stranger_public}


def curve_config(keys: dict[str, Path], endpoint: str = "tcp://127.0.0.1:*"):
    return make_config(publisher={"endpoint": endpoint, "curve_secret_key": str(keys["server_secret"]),
                                  "curve_clients": str(keys["clients"])})


@pytest.fixture
def secured(keys):
    pipeline = Pipeline(curve_config(keys), FixedClassifier(), threading.Event())
    pipeline.start()
    yield pipeline
    pipeline.shutdown()


def received_while_allowed_client_gets_results(pipeline, keys, configure) -> list:
    """Messages the client set up by `configure` receives while an allowed client receives 20 results."""
    allowed = Subscriber(pipeline.publisher.endpoint,
                         configure=partial(secure_client, server_public_key=keys["server_public"],
                                           client_secret_key=keys["pos_secret"]))
    other = Subscriber(pipeline.publisher.endpoint, configure=configure)
    try:
        allowed.collect_until(lambda _m: len(allowed.of_type("result")) >= 20, timeout_s=20)
        other.collect_until(lambda messages: bool(messages), timeout_s=0.5)
    finally:
        allowed.close()
        other.close()
    assert len(allowed.of_type("result")) >= 20, "the allow-listed client with the server key receives results"
    return other.messages


def test_allowed_client_with_the_server_key_receives_results_and_heartbeats(secured, keys):
    subscriber = Subscriber(secured.publisher.endpoint,
                            configure=partial(secure_client, server_public_key=keys["server_public"],
                                              client_secret_key=keys["pos_secret"]))
    with subscriber:
        subscriber.collect_until(lambda _m: subscriber.of_type("heartbeat") and len(subscriber.of_type("result")) >= 3)
    assert len(subscriber.of_type("result")) >= 3 and subscriber.of_type("heartbeat")


def test_client_without_curve_receives_nothing(secured, keys):
    assert received_while_allowed_client_gets_results(secured, keys, lambda _socket: None) == []


def test_client_with_a_wrong_server_key_receives_nothing(secured, keys):
    configure = partial(secure_client, server_public_key=keys["stranger_public"], client_secret_key=keys["pos_secret"])
    assert received_while_allowed_client_gets_results(secured, keys, configure) == []


def test_client_with_the_server_key_but_not_on_the_allow_list_receives_nothing(secured, keys):
    configure = partial(secure_client, server_public_key=keys["server_public"], client_secret_key=keys["outsider_secret"])
    assert received_while_allowed_client_gets_results(secured, keys, configure) == []


@pytest.mark.parametrize("endpoint", ["tcp://0.0.0.0:5556", "tcp://*:5556", "tcp://eth0:5556", "tcp://192.168.1.10:5556"])
def test_binding_beyond_loopback_without_keys_is_a_config_error_naming_the_key(endpoint):
    with pytest.raises(ConfigError, match="curve_secret_key is required"):
        make_config(publisher={"endpoint": endpoint})


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5556", "tcp://localhost:5556", "tcp://[::1]:5556", "ipc:///run/streamrec/pub"])
def test_local_binds_need_no_keys(endpoint):
    assert not make_config(publisher={"endpoint": endpoint}).publisher.curve


def test_allow_insecure_permits_a_clear_bind_beyond_loopback():
    assert make_config(publisher={"endpoint": "tcp://0.0.0.0:5556", "allow_insecure": True}).publisher.endpoint


def test_server_key_without_an_allow_list_is_refused(keys):
    with pytest.raises(ConfigError, match="curve_clients must be set"):
        make_config(publisher={"curve_secret_key": str(keys["server_secret"])})


def test_a_public_key_given_as_the_secret_key_is_refused(keys):
    config = make_config(publisher={"curve_secret_key": str(keys["server_public"]), "curve_clients": str(keys["clients"])})
    with pytest.raises(CurveKeyError, match="holds no secret key"):
        Pipeline(config, FixedClassifier(), threading.Event())


def test_run_refuses_a_non_loopback_bind_without_keys_with_exit_2(torch_home):
    done = run_cli("run", "--headless", "--source", "synthetic", "--publish", "tcp://0.0.0.0:5556",
                   env=cli_env(TORCH_HOME=str(torch_home)))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "curve_secret_key" in done.stderr, done.stderr


def test_keys_generate_writes_a_pair_with_a_private_secret(tmp_path):
    done = run_cli("keys", "generate", str(tmp_path / "keys"), "--name", "pos1")
    assert done.returncode == 0, done.stderr
    secret = tmp_path / "keys" / "pos1.key_secret"
    assert (tmp_path / "keys" / "pos1.key").is_file()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    public, secret_key = zmq.auth.load_certificate(secret)
    assert secret_key and public == zmq.auth.load_certificate(tmp_path / "keys" / "pos1.key")[0]


def test_keys_generate_never_overwrites_a_key(tmp_path):
    generate_keypair(tmp_path, "server")
    before = (tmp_path / "server.key_secret").read_bytes()
    done = run_cli("keys", "generate", str(tmp_path))
    assert done.returncode == 2 and "already exists" in done.stderr
    assert (tmp_path / "server.key_secret").read_bytes() == before


def test_subscribe_cli_with_its_keys_receives_from_a_secured_publisher(secured, keys):
    done = run_cli("subscribe", "--endpoint", secured.publisher.endpoint, "--topic", "heartbeat", "--count", "2",
                   "--duration", "30", "--server-key", str(keys["server_public"]), "--client-key", str(keys["pos_secret"]))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2 and '"type":"heartbeat"' in done.stdout
