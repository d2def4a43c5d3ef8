"""The README and the default config document every config key the schema accepts."""

import typing
from pathlib import Path

import pytest

from config.schema import AppConfig

REPO = Path(__file__).resolve().parent.parent


def schema_keys() -> list[tuple[str, str]]:
    keys = []
    for table, field in AppConfig.model_fields.items():
        model = typing.get_args(field.annotation)[0] if typing.get_args(field.annotation) else field.annotation
        keys += [(table, key) for key in model.model_fields]
    return keys


@pytest.mark.parametrize("table, key", schema_keys())
def test_every_config_key_is_in_readme_and_default_toml(table, key):
    readme = (REPO / "README.md").read_text()
    default = (REPO / "config" / "default.toml").read_text()
    assert f"`{key}`" in readme or f"`{table}.{key}`" in readme or f"`{key}`," in readme, f"README lacks {table}.{key}"
    assert f"{key} =" in default or f"# {key} =" in default, f"default.toml lacks {table}.{key}"
