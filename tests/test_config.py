"""Config loading and validation: good files pass, bad values give one line naming the key."""

from pathlib import Path

import pytest

from config.loader import ConfigError, Overrides, default_config_path, load_config, validate
from config.schema import DropPolicy
from tests.conftest import run_cli


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streamrec.toml"
    path.write_text(text)
    return path


def test_default_config_is_valid_and_documented():
    config = load_config(default_config_path())
    assert config.cameras[0].source == "usb:0"
    assert config.model.top_k == 3
    assert config.publisher.endpoint == "tcp://127.0.0.1:5556"


def test_check_config_accepts_default_file():
    done = run_cli("check-config", str(default_config_path()))
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


@pytest.mark.parametrize(
    "text, key, problem",
    [
        ('[[cameras]]\nid="a"\nsource="synthetic"\nqueue_siz=3\n', "cameras[0].queue_siz", "unknown key"),
        ('[[cameras]]\nid="a"\nsource="synthetic"\nqueue_size=0\n', "cameras[0].queue_size", "greater than or equal to 1"),
        ('[[cameras]]\nid="a"\nsource="synthetic"\n[batching]\nmax_batch="eight"\n', "batching.max_batch", "valid integer"),
        ('[[cameras]]\nid="a"\nsource="webcam"\n', "cameras[0].source", "unknown source spec"),
        ('[[cameras]]\nid="a"\nsource="usb:0"\ndrop_policy="block"\n', "cameras[0]", "live camera"),
        ('[[cameras]]\nid="a"\nsource="synthetic"\n[publisher]\nendpoint="udp://x"\n', "publisher.endpoint", "tcp://"),
        ('[[cameras]]\nid="a"\nsource="synthetic"\n[[cameras]]\nid="a"\nsource="synthetic"\n', "cameras", "unique"),
        ('cameras = []\n', "cameras", "at least 1"),
        ('[[cameras]]\nid="a"\nsource="synthetic"\n[events]\nmin_score=1.5\n', "events.min_score", "less than or equal to 1"),
    ],
)
def test_bad_config_exits_2_naming_key_and_problem(tmp_path, text, key, problem):
    done = run_cli("check-config", str(write(tmp_path, text)))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert key in lines[0] and problem in lines[0]
    assert "Traceback" not in done.stderr


def test_broken_toml_exits_2_with_position(tmp_path):
    done = run_cli("check-config", str(write(tmp_path, "[[cameras]\nid=")))
    assert done.returncode == 2
    assert "not valid TOML" in done.stderr and "line 1" in done.stderr


def test_missing_config_file_exits_2(tmp_path):
    done = run_cli("run", "--config", str(tmp_path / "nope.toml"))
    assert done.returncode == 2
    assert "file not found" in done.stderr


def test_credentials_in_bad_source_are_not_echoed(tmp_path):
    text = '[[cameras]]\nid="a"\nsource="rtsp://admin:hunter2@"\n'
    done = run_cli("check-config", str(write(tmp_path, text)))
    assert done.returncode == 2
    assert "hunter2" not in done.stderr


def test_command_line_sources_replace_config_cameras(tmp_path):
    overrides = Overrides(sources=("synthetic", "file:/tmp/x.mp4"), endpoint="ipc:///tmp/x", headless=True)
    config = load_config(default_config_path(), overrides)
    assert [(c.id, c.source) for c in config.cameras] == [("cam0", "synthetic"), ("cam1", "file:/tmp/x.mp4")]
    assert config.publisher.endpoint == "ipc:///tmp/x"
    assert config.overlay.enabled is False


def test_bad_command_line_source_is_a_config_error():
    with pytest.raises(ConfigError, match="cameras\\[0\\].source"):
        load_config(default_config_path(), Overrides(sources=("nonsense",)))


@pytest.mark.parametrize(
    "source, pace, expected",
    [("usb:0", True, DropPolicy.DROP_OLDEST), ("synthetic", True, DropPolicy.DROP_OLDEST),
     ("file:a.mp4", True, DropPolicy.DROP_OLDEST), ("file:a.mp4", False, DropPolicy.BLOCK)],
)
def test_auto_drop_policy_blocks_only_unpaced_files(source, pace, expected):
    config = validate({"cameras": [{"id": "c", "source": source, "pace": pace}]})
    assert config.cameras[0].effective_drop_policy is expected
