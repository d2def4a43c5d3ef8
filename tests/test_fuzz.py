"""Property-based fuzzing (bounded): hostile configs and frames give a config or one clear error line, a frame
or a clear BadFrame, and never another exception."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.image import BadFrame, as_bgr
from config.loader import ConfigError, Overrides, load_config, validate
from config.schema import AppConfig, CameraConfig
from inference.preprocess import BatchPreprocessor, InputSpec

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TABLE_KEYS = {table: list(field.annotation.model_fields) for table, field in AppConfig.model_fields.items()
              if table != "cameras"}
CAMERA_KEYS = list(CameraConfig.model_fields)
NASTY_STRINGS = ["", " ", "synthetic", "synthetic:nope", "usb:0", "usb:9999", "/dev/video0", "rtsp://", "rtsp://u:p%21@",
                 "rtsp://u:p@h:99999/x", "rtsp://h/x y", "file:", "file:/x\x00y", "a.mp4", "nan", "inf", "-1", "💥",
                 "x" * 5000, "tcp://", "ipc://", "DEBUG", "auto", "block", "\n", "rtsp://[::1/x"]

scalars = st.one_of(
    st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.sampled_from(NASTY_STRINGS),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                      max_leaves=8)


@st.composite
def configs(draw):
    camera = {"id": "cam0", "source": "synthetic"}
    for key in draw(st.lists(st.sampled_from(CAMERA_KEYS + ["bogus"]), max_size=4)):
        camera[key] = draw(values)
    data = {"cameras": draw(st.sampled_from([[camera], [camera, dict(camera)], camera, [], "cameras"]))}
    for table in draw(st.lists(st.sampled_from(list(TABLE_KEYS) + ["extra"]), max_size=3)):
        keys = TABLE_KEYS.get(table, ["x"])
        data[table] = draw(st.one_of(values, st.dictionaries(st.sampled_from(keys), values, max_size=3)))
    return data


def assert_one_line(error: ConfigError) -> None:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text


@FUZZ
@given(configs())
def test_config_dicts_validate_or_give_one_line_error(data):
    try:
        validate(data)
    except ConfigError as error:
        assert_one_line(error)


@FUZZ
@given(st.text(max_size=300), st.sampled_from([Overrides(), Overrides(sources=("synthetic",), endpoint="tcp://127.0.0.1:*",
                                                                          headless=True, model="resnet18")]))
def test_config_files_load_or_give_one_line_error(text, overrides):
    handle, name = tempfile.mkstemp(suffix=".toml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="surrogatepass") as file:
            file.write(text)
        try:
            load_config(Path(name), overrides)
        except ConfigError as error:
            assert_one_line(error)
    finally:
        os.unlink(name)


@pytest.mark.parametrize("text", ["publisher = 5", "overlay = [1, 2]", "model = 'x'"])
def test_a_table_given_as_a_plain_value_is_a_config_error_even_with_overrides(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(f"{text}\n[[cameras]]\nid = 'a'\nsource = 'synthetic'\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, Overrides(endpoint="tcp://127.0.0.1:*", headless=True, model="resnet18"))
    assert_one_line(error.value)


@pytest.mark.parametrize("key, value", [("read_timeout_s", float("nan")), ("open_timeout_s", float("inf")),
                                        ("frozen_after_s", -1.0), ("blocked_after_s", 0.0), ("seed", 2**40)])
def test_adversarial_camera_numbers_are_refused(key, value):
    with pytest.raises(ConfigError, match=f"cameras\\[0\\].{key}"):
        validate({"cameras": [{"id": "cam0", "source": "synthetic", key: value}]})


shapes = st.one_of(
    st.tuples(st.integers(0, 48), st.integers(0, 48)),
    st.tuples(st.integers(0, 48), st.integers(0, 48), st.integers(0, 5)),
    st.lists(st.integers(0, 5), max_size=5).map(tuple),
)
dtypes = st.sampled_from([np.uint8, np.uint8, np.uint16, np.int8, np.float32, np.float64, bool, np.int64])
layouts = st.sampled_from(["c", "fortran", "flipped", "strided"])


def arrange(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "flipped" and array.ndim:
        return array[::-1]
    if layout == "strided" and array.ndim >= 2:
        return np.repeat(np.repeat(array, 2, axis=0), 2, axis=1)[::2, ::2]
    return array


@FUZZ
@given(shapes, dtypes, layouts, st.integers(0, 2**32 - 1))
def test_any_array_becomes_a_frame_the_model_can_take_or_a_bad_frame(shape, dtype, layout, seed):
    rng = np.random.default_rng(seed)
    array = arrange((rng.random(shape) * 255).astype(dtype), layout)
    try:
        frame = as_bgr(array)
    except BadFrame as error:
        assert str(error)
        return
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.flags["C_CONTIGUOUS"]
    batch = BatchPreprocessor(InputSpec.for_crop(32), 1)([frame])
    assert batch.shape == (1, 3, 32, 32) and torch.isfinite(batch).all()


@FUZZ
@given(st.one_of(st.none(), st.text(max_size=10), st.integers(), st.lists(st.integers(), max_size=5),
                 st.binary(max_size=20), st.just(np.array(5, np.uint8))))
def test_things_that_are_not_images_are_bad_frames(thing):
    with pytest.raises(BadFrame):
        as_bgr(thing)


@pytest.mark.parametrize("shape", [(4320, 7680, 3), (4320, 7680), (4320, 7680, 4)])
def test_8k_frames_are_converted_and_preprocessed(shape):
    frame = as_bgr(np.full(shape, 200, np.uint8))
    assert frame.shape == (4320, 7680, 3)
    assert torch.isfinite(BatchPreprocessor(InputSpec.for_crop(64), 1)([frame])).all()


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (0, 0), (0, 0, 3), (8, 16384, 3), (20000, 20000)])
def test_tiny_empty_huge_and_strip_frames_are_bad_frames(shape):
    with pytest.raises(BadFrame, match="image size"):
        as_bgr(np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=shape, strides=(0,) * len(shape)))
