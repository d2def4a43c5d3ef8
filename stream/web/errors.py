"""Errors of the web server that the CLI turns into exit codes (kept free of heavy imports so the CLI starts fast)."""


class WebError(Exception):
    """The HTTP server cannot listen; the message says what to change."""
