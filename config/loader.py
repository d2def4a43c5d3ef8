"""Load a TOML config, apply command-line overrides, validate: one path for `run` and `check-config`."""

from __future__ import annotations

import logging
import stat
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from config.redact import redact
from config.schema import AppConfig

log = logging.getLogger(__name__)

SECRET_KEYS = ("password", "token", "remote_token", "remote_headers")
"""Config keys whose values are secrets wherever they appear (http.token, mqtt.password, model.remote_token, …)."""


class ConfigError(Exception):
    """An unreadable or invalid config; the message is one line naming the key and the problem."""


@dataclass(frozen=True)
class Overrides:
    """Values from the command line that replace the file's."""

    sources: tuple[str, ...] = ()
    endpoint: Optional[str] = None
    headless: bool = False
    model: Optional[str] = None
    labels: Optional[str] = None
    http: Optional[str] = None
    """--http HOST:PORT: enables the web interface on that address."""
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)


def default_config_path() -> Path:
    """The documented default config shipped inside the package."""
    return Path(str(resources.files("config").joinpath("default.toml")))


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file into a dict, or raise ConfigError saying where it is broken."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied; make it readable by the service user") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def apply_overrides(data: dict[str, Any], overrides: Overrides) -> dict[str, Any]:
    """Return a copy of the raw config dict with command-line values put in."""
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in data.items()}
    if overrides.sources:
        merged["cameras"] = [{"id": f"cam{i}", "source": spec} for i, spec in enumerate(overrides.sources)]
    table_values = {
        ("publisher", "endpoint"): overrides.endpoint,
        ("overlay", "enabled"): False if overrides.headless else None,
        ("model", "spec"): overrides.model,
        ("model", "labels"): overrides.labels,
        ("http", "listen"): overrides.http,
        ("http", "enabled"): True if overrides.http else None,
    }
    for (table, key), value in table_values.items():
        if value is not None:
            _table(merged, table)[key] = value
    for table, values in overrides.extra.items():
        _table(merged, table).update(values)
    return merged


def _table(data: dict[str, Any], table: str) -> dict[str, Any]:
    """The table a command-line value goes into; a key of that name that is not a table is a config error."""
    value = data.setdefault(table, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{table}: must be a table ([{table}]), not a {type(value).__name__}")
    return value


def validate(data: dict[str, Any], origin: str = "config") -> AppConfig:
    """Validate a raw dict into an AppConfig or raise ConfigError naming the first bad key."""
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {describe_first_error(exc)}") from None


def describe_first_error(exc: ValidationError) -> str:
    """One line: `key.path: problem`, plus how many other problems there are."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    key = ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in first["loc"]).replace(".[", "[")
    problem = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        problem = "unknown key (check the spelling against config/default.toml)"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return redact(f"{key or 'config'}: {problem}{more}")


def holds_credentials(value: Any) -> bool:
    """True when any string in a parsed config carries a password or token (as `redact` would mask), or a secret
    key (SECRET_KEYS) has a value."""
    if isinstance(value, str):
        return redact(value) != value
    if isinstance(value, dict):
        return any((key in SECRET_KEYS and bool(v)) or holds_credentials(v) for key, v in value.items())
    if isinstance(value, list):
        return any(holds_credentials(v) for v in value)
    return False


def warn_if_exposed(path: Path, data: dict[str, Any]) -> bool:
    """Warn (and return True) when a config holding credentials is readable by every user."""
    try:
        world_readable = bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False
    if world_readable and holds_credentials(data):
        log.warning("%s holds credentials and is readable by every user; run: chmod 640 %s "
                    "(and chgrp streamrec %s when the service reads it)", path, path, path)
        return True
    return False


def load_config(path: Optional[Path] = None, overrides: Overrides = Overrides()) -> AppConfig:
    """Read `path` (or the packaged default), apply overrides and validate."""
    source = path or default_config_path()
    data = read_toml(source)
    warn_if_exposed(source, data)
    try:
        merged = apply_overrides(data, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return validate(merged, origin=str(source))
