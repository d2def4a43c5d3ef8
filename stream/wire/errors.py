"""Errors of the publisher side that the CLI turns into exit codes (kept free of heavy imports so the CLI starts fast)."""


class PublishError(Exception):
    """The publisher socket cannot be set up; the message says what to change."""


class CurveKeyError(PublishError):
    """A CurveZMQ key file or key directory cannot be used (a config problem: exit 2, no restart)."""
