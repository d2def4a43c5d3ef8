"""The web interface and HTTP API inside `streamrec run`: status page, previews, /predict, /healthz, /metrics."""

from stream.web.context import WebContext
from stream.web.server import WebServer

__all__ = ["WebContext", "WebServer"]
