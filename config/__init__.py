"""Configuration: the schema, source specs, credential redaction and the TOML loader."""

from config.loader import ConfigError, Overrides, default_config_path, load_config, read_toml, validate
from config.redact import RedactingFormatter, redact
from config.schema import AppConfig, CameraConfig, DropPolicy
from config.sources import SourceKind, SourceSpec, parse_source_spec

__all__ = [
    "AppConfig",
    "CameraConfig",
    "ConfigError",
    "DropPolicy",
    "Overrides",
    "RedactingFormatter",
    "SourceKind",
    "SourceSpec",
    "default_config_path",
    "load_config",
    "parse_source_spec",
    "read_toml",
    "redact",
    "validate",
]
