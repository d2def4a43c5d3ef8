"""The [http] table and --http: listen addresses, the token rule beyond loopback, and one-line errors (exit 2)."""

import threading

import pytest

from config.listen import ListenAddress, parse_listen
from config.loader import ConfigError, Overrides, default_config_path, load_config
from stream.pipeline.app import Pipeline
from stream.web.errors import WebError
from tests.conftest import make_config, run_cli
from tests.fakes import FixedClassifier
from tests.webclient import web_pipeline

TOKEN = "0123456789abcdef"


@pytest.mark.parametrize("text, address, loopback", [
    ("127.0.0.1:8080", ListenAddress("127.0.0.1", 8080), True),
    ("localhost:0", ListenAddress("localhost", 0), True),
    ("[::1]:9000", ListenAddress("::1", 9000), True),
    ("0.0.0.0:8080", ListenAddress("0.0.0.0", 8080), False),
    ("192.168.1.20:80", ListenAddress("192.168.1.20", 80), False),
    ("kiosk.local:8080", ListenAddress("kiosk.local", 8080), False),
])
def test_listen_addresses_parse_and_know_whether_they_stay_local(text, address, loopback):
    assert parse_listen(text) == address
    assert address.is_loopback is loopback


@pytest.mark.parametrize("text", ["8080", ":8080", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "::1:80", "300.1.1.1:80"])
def test_bad_listen_addresses_are_refused(text):
    with pytest.raises(ValueError):
        parse_listen(text)


def test_web_interface_is_off_and_on_loopback_by_default():
    http = load_config(default_config_path()).http
    assert http.enabled is False
    assert http.address.is_loopback


def test_http_flag_enables_the_web_interface_on_that_address():
    http = load_config(default_config_path(), Overrides(http="127.0.0.1:9191")).http
    assert http.enabled is True and http.address == ListenAddress("127.0.0.1", 9191)


def test_beyond_loopback_with_a_token_is_accepted():
    http = load_config(default_config_path(), Overrides(http="0.0.0.0:8080", extra={"http": {"token": TOKEN}})).http
    assert http.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(http)


@pytest.mark.parametrize("args, key, problem", [
    (["--http", "0.0.0.0:8080"], "http", "needs http.token or http.token_file"),
    (["--http", "8080"], "http.listen", "expected HOST:PORT"),
])
def test_run_with_a_bad_http_setting_exits_2_naming_the_key(args, key, problem):
    done = run_cli("run", "--source", "synthetic", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{key}: " in lines[0] and problem in lines[0]


@pytest.mark.parametrize("table, key, problem", [
    ('[http]\nenabled = true\nlisten = "0.0.0.0:8080"\n', "http", "needs http.token"),
    ('[http]\ntoken = "short"\n', "http.token", "at least 16 characters"),
    (f'[http]\ntoken = "{TOKEN}"\ntoken_file = "/etc/token"\n', "http", "not both"),
    ('[http]\npreview_fps = 100\n', "http.preview_fps", "less than or equal to 30"),
    ('[http]\nport = 80\n', "http.port", "unknown key"),
])
def test_bad_http_table_exits_2_naming_the_key(tmp_path, table, key, problem):
    path = tmp_path / "streamrec.toml"
    path.write_text('[[cameras]]\nid = "cam0"\nsource = "synthetic"\n' + table)
    path.chmod(0o600)  # a world-readable file holding a token draws its own warning (test_config_exposure)
    done = run_cli("check-config", str(path))
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line and f"{key}: " in line and problem in line, done.stderr
    assert TOKEN not in done.stderr


def test_unreadable_token_file_is_a_config_error_naming_the_key(tmp_path):
    config = make_config(http={"enabled": True, "listen": "127.0.0.1:0", "token_file": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="http.token_file: cannot read"):
        Pipeline(config, FixedClassifier(), threading.Event())


def test_address_in_use_is_a_clear_error():
    with web_pipeline() as (first, _client):
        port = first.web.url.rsplit(":", 1)[1].strip("/")
        config = make_config(http={"enabled": True, "listen": f"127.0.0.1:{port}"})
        second = Pipeline(config, FixedClassifier(), threading.Event())
        try:
            with pytest.raises(WebError, match=f"cannot listen on 127.0.0.1:{port}.*http.listen or --http"):
                second.start()
        finally:
            second.shutdown()
