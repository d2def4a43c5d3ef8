"""Errors of model loading; the CLI turns ModelError into exit code 78 (EX_CONFIG)."""


class ModelError(Exception):
    """The model or its weights cannot be found or used; the message says how to fix it."""


class WeightsNotFound(ModelError):
    """No weights file where they were looked for."""


class FetchError(Exception):
    """Downloading or verifying the official weights failed."""
