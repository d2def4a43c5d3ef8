"""A served model over TLS (gRPC, mutual TLS, HTTPS) and behind a token or header, against real Triton servers on
loopback; the token never shows in errors, reprs or logs."""

import logging
import select
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.schema import ModelConfig
from inference.bundle import load_bundle
from inference.errors import ModelError
from inference.loader import load_classifier
from inference.preprocess import BatchPreprocessor
from inference.remote import parse_remote_spec
from inference.remote_auth import TOKEN_ENV, RemoteAuth
from inference.triton_export import export_triton
from tests.triton_fixture import TritonServer, require_triton, served_by_python_backend

pytest.importorskip("tritonclient.grpc")

TOKEN = "s3cret-token-4242"
API_KEY = "k3y-for-http-77"


@dataclass(frozen=True)
class Pki:
    """A test CA and the certificates it signed (server: 127.0.0.1 and localhost; client: for mutual TLS)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def openssl(*args) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


def make_pki(folder: Path) -> Pki:
    key_args = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *key_args, "-keyout", folder / "ca.key", "-out", folder / "ca.pem", "-days", "2",
            "-subj", "/CN=streamrec test CA")
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                            ("client", "extendedKeyUsage=clientAuth")):
        (folder / f"{name}.ext").write_text(extension + "\n")
        openssl("req", *key_args, "-keyout", folder / f"{name}.key", "-out", folder / f"{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", folder / f"{name}.csr", "-CA", folder / "ca.pem", "-CAkey", folder / "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", folder / f"{name}.ext", "-out", folder / f"{name}.pem")
    return Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem", folder / "client.key")


class TlsProxy:
    """TLS in front of a plain port, as a load balancer terminates it (Triton's HTTP endpoint has no TLS itself)."""

    def __init__(self, target_port: int, pki: Pki) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, name="tls-proxy", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(conn,), name="tls-proxy-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls, \
                    socket.create_connection(("127.0.0.1", self.target_port), timeout=5) as plain:
                self._pump(tls, plain)
        except OSError:  # a refused handshake or a closed peer ends this connection only
            conn.close()

    def _pump(self, tls: ssl.SSLSocket, plain: socket.socket) -> None:
        while not self.stop.is_set():
            readable, _, _ = select.select([tls, plain], [], [], 0.2)
            for source in readable:
                target = plain if source is tls else tls
                data = source.recv(65536)
                if not data:
                    return
                target.sendall(data)
                while source is tls and tls.pending():
                    plain.sendall(tls.recv(65536))


@pytest.fixture(scope="module")
def repository(tiny_bundle, tmp_path_factory) -> Path:
    require_triton()
    folder = tmp_path_factory.mktemp("triton-secure-repo")
    served_by_python_backend(export_triton(load_bundle(tiny_bundle).to_classifier(), folder, "tiny"))
    return folder


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def serve(repository: Path, tmp_path_factory, *args: str):
    server = TritonServer(repository, tmp_path_factory.mktemp("triton-scratch"), extra_args=args)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_server(repository, pki, tmp_path_factory):
    yield from serve(repository, tmp_path_factory, "--grpc-use-ssl", "true", "--grpc-server-cert", str(pki.server_cert),
                     "--grpc-server-key", str(pki.server_key), "--grpc-root-cert", str(pki.ca))


@pytest.fixture(scope="module")
def mutual_tls_server(repository, pki, tmp_path_factory):
    yield from serve(repository, tmp_path_factory, "--grpc-use-ssl-mutual", "true", "--grpc-server-cert",
                     str(pki.server_cert), "--grpc-server-key", str(pki.server_key), "--grpc-root-cert", str(pki.ca))


@pytest.fixture(scope="module")
def token_server(repository, tmp_path_factory):
    yield from serve(repository, tmp_path_factory,
                     f"--grpc-restricted-protocol=inference,model-config,metadata:authorization=Bearer {TOKEN}",
                     f"--http-restricted-api=inference:authorization=Bearer {TOKEN}",
                     f"--http-restricted-api=model-config,metadata:x-api-key={API_KEY}")


@pytest.fixture
def https_proxy(tls_server, pki):
    proxy = TlsProxy(tls_server.http_port, pki)
    yield proxy
    proxy.close()


def predicts(classifier) -> bool:
    crops = BatchPreprocessor(classifier.input_spec, 2, rgb_uint8=True)([render() for _ in range(2)]).clone()
    return classifier.predict(crops).shape == (2, len(classifier.labels))


def render():
    import numpy as np

    return np.random.default_rng(3).integers(0, 255, (240, 320, 3), dtype=np.uint8)


def test_grpcs_with_the_servers_ca_gives_predictions(tls_server, pki):
    remote = load_classifier(ModelConfig(spec=f"triton:grpcs://127.0.0.1:{tls_server.grpc_port}/tiny", remote_ca=pki.ca))
    assert predicts(remote) and remote.description.startswith("triton:grpcs://")


def test_grpcs_without_the_ca_is_a_model_error_naming_remote_ca(tls_server):
    with pytest.raises(ModelError, match="remote_ca"):
        load_classifier(ModelConfig(spec=f"triton:grpcs://127.0.0.1:{tls_server.grpc_port}/tiny"))


def test_https_with_the_ca_gives_predictions(https_proxy, pki):
    remote = load_classifier(ModelConfig(spec=f"triton:https://127.0.0.1:{https_proxy.port}/tiny", remote_ca=pki.ca))
    assert predicts(remote)


def test_https_without_the_ca_is_a_model_error_naming_remote_ca(https_proxy):
    with pytest.raises(ModelError, match="remote_ca"):
        load_classifier(ModelConfig(spec=f"triton:https://127.0.0.1:{https_proxy.port}/tiny"))


def test_mutual_tls_with_the_client_certificate_gives_predictions(mutual_tls_server, pki):
    remote = load_classifier(ModelConfig(spec=f"triton:grpcs://127.0.0.1:{mutual_tls_server.grpc_port}/tiny",
                                         remote_ca=pki.ca, remote_cert=pki.client_cert, remote_key=pki.client_key))
    assert predicts(remote)


def test_mutual_tls_without_a_client_certificate_is_a_model_error(mutual_tls_server, pki):
    with pytest.raises(ModelError, match="remote_cert"):
        load_classifier(ModelConfig(spec=f"triton:grpcs://127.0.0.1:{mutual_tls_server.grpc_port}/tiny",
                                    remote_ca=pki.ca))


def test_an_unreadable_ca_file_is_a_model_error_naming_the_key(tmp_path):
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    for ca in (tmp_path / "missing.pem", tmp_path / "junk.pem"):
        with pytest.raises(ModelError, match=f"model.remote_ca {ca}"):
            load_classifier(ModelConfig(spec="triton:grpcs://127.0.0.1:1/tiny", remote_ca=ca))


def test_a_client_key_that_does_not_match_is_a_model_error(pki):
    with pytest.raises(ModelError, match="model.remote_cert"):
        load_classifier(ModelConfig(spec="triton:https://127.0.0.1:1/tiny", remote_ca=pki.ca,
                                    remote_cert=pki.client_cert, remote_key=pki.server_key))


def test_the_bearer_token_opens_a_restricted_grpc_server(token_server):
    remote = load_classifier(ModelConfig(spec=f"triton:grpc://127.0.0.1:{token_server.grpc_port}/tiny",
                                         remote_token=SecretStr(TOKEN)))
    assert predicts(remote)
    assert TOKEN not in f"{remote.description} {remote.spec} {remote!r} {vars(remote)!r}"


def test_the_token_comes_from_the_environment_when_the_config_has_none(token_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert predicts(load_classifier(ModelConfig(spec=f"triton:grpc://127.0.0.1:{token_server.grpc_port}/tiny")))


def test_without_the_token_a_restricted_server_is_a_model_error_naming_remote_token(token_server):
    with pytest.raises(ModelError, match="remote_token"):
        load_classifier(ModelConfig(spec=f"triton:grpc://127.0.0.1:{token_server.grpc_port}/tiny"))


def test_a_wrong_token_never_reaches_the_error_or_the_log(token_server, caplog):
    wrong = "wrong-token-9876"
    with caplog.at_level(logging.DEBUG), pytest.raises(ModelError, match="remote_token") as failure:
        load_classifier(ModelConfig(spec=f"triton:grpc://127.0.0.1:{token_server.grpc_port}/tiny",
                                    remote_token=SecretStr(wrong)))
    assert wrong not in str(failure.value) and wrong not in caplog.text and TOKEN not in caplog.text


def test_the_token_and_a_header_from_remote_headers_open_a_restricted_http_server(token_server):
    config = ModelConfig(spec=f"triton:http://127.0.0.1:{token_server.http_port}/tiny",
                         remote_token=SecretStr(TOKEN), remote_headers={"X-Api-Key": API_KEY})
    assert predicts(load_classifier(config))
    assert API_KEY not in repr(config) and API_KEY not in config.model_dump_json()


def test_the_config_token_wins_over_the_environment():
    auth = RemoteAuth.from_config(ModelConfig(remote_token=SecretStr("from-config")), {TOKEN_ENV: "from-env"})
    assert dict(auth.headers)["authorization"] == "Bearer from-config"
    assert "from-config" not in repr(auth) and auth.scrub("x from-config y") == "x *** y"


def test_the_token_is_hidden_in_the_config_echo():
    config = ModelConfig(spec="triton:grpcs://h:1/m", remote_token=SecretStr(TOKEN))
    assert TOKEN not in repr(config) and TOKEN not in str(config.model_dump()) and TOKEN not in config.model_dump_json()


@pytest.mark.parametrize("values, problem", [
    ({"remote_cert": "c.pem"}, "together"),
    ({"remote_ca": "ca.pem"}, "grpcs"),
    ({"remote_headers": {"Authorization": "Bearer x"}}, "remote_token"),
    ({"remote_headers": {"x key": "v"}}, "header name"),
    ({"remote_token": "abc\ndef"}, "control characters"),
])
def test_bad_remote_settings_are_refused_at_validation(values, problem):
    with pytest.raises(ValueError, match=problem):
        ModelConfig(spec="triton:grpc://h:1/m", **values)


def test_tls_schemes_parse_and_credentials_in_the_address_are_refused_unechoed():
    assert parse_remote_spec("triton:grpcs://h:1/m").tls and str(parse_remote_spec("triton:https://h:1/m")) == "triton:https://h:1/m"
    with pytest.raises(ModelError, match="remote_token") as failure:
        parse_remote_spec(f"triton:grpcs://user:{TOKEN}@h:1/m")
    assert TOKEN not in str(failure.value)
