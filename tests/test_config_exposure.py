"""A config file that holds credentials and that every user can read draws a warning naming the fix."""

import logging
import os

import pytest

from config.loader import load_config

CAMERA_WITH_PASSWORD = '[[cameras]]\nid = "cam0"\nsource = "rtsp://admin:hunter2@10.0.0.5/stream"\n'
CAMERA_WITH_TOKEN = '[[cameras]]\nid = "cam0"\nsource = "rtsp://10.0.0.5/stream?token=abc123"\n'
PLAIN_CAMERA = '[[cameras]]\nid = "cam0"\nsource = "usb:0"\n'
REMOTE_TOKEN = PLAIN_CAMERA + '[model]\nspec = "triton:grpcs://10.0.0.9:8001/m"\nremote_token = "hunter2"\n'


def write_config(tmp_path, text: str, mode: int):
    path = tmp_path / "streamrec.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("text", [CAMERA_WITH_PASSWORD, CAMERA_WITH_TOKEN, REMOTE_TOKEN])
def test_world_readable_config_with_credentials_warns_with_the_chmod(tmp_path, caplog, text):
    path = write_config(tmp_path, text, 0o644)
    with caplog.at_level(logging.WARNING, logger="config.loader"):
        load_config(path)
    assert f"chmod 640 {path}" in caplog.text
    assert "hunter2" not in caplog.text and "abc123" not in caplog.text


def test_private_config_with_credentials_is_quiet(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="config.loader"):
        load_config(write_config(tmp_path, CAMERA_WITH_PASSWORD, 0o640))
    assert "chmod" not in caplog.text


def test_world_readable_config_without_credentials_is_quiet(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="config.loader"):
        load_config(write_config(tmp_path, PLAIN_CAMERA, 0o644))
    assert "chmod" not in caplog.text
