"""The HTTP server: aiohttp on its own thread and event loop; start() returns once it listens, stop() is bounded."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from aiohttp import web

from stream.web.context import WebContext
from stream.web.errors import WebError
from stream.web.metrics import WebMetrics
from stream.web.routes import build_app

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
SHUTDOWN_GRACE_S = 0.3
"""Requests still running this long after stop() are cancelled (preview streams end at once)."""
STOP_TIMEOUT_S = 1.0
PREDICT_WORKERS = 8
"""Threads that decode uploads and wait for their results; up to this many uploads join one batch."""


class WebServer:
    """Serves the web page and HTTP API of one pipeline from a named thread ("web")."""

    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx
        self.metrics = WebMetrics.for_context(ctx)
        self._predict_executor = ThreadPoolExecutor(PREDICT_WORKERS, thread_name_prefix="web-predict")
        self._preview_executor = ThreadPoolExecutor(1, thread_name_prefix="web-preview")
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._ready = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stopping: Optional[asyncio.Event] = None
        self._error: Optional[Exception] = None
        self.url: Optional[str] = None
        """`http://HOST:PORT/` once listening (the real port when http.listen asks for port 0)."""

    def start(self) -> None:
        """Listen on http.listen; raise WebError naming the address when that is impossible."""
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise WebError(f"the web server did not start within {START_TIMEOUT_S:.0f} s")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop listening, end preview streams, cancel requests after a short grace, and join the thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:
                pass  # the loop has already ended
        if self._thread.ident is not None:
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("thread web did not stop within %.1f s; leaving it behind", STOP_TIMEOUT_S)
        # Threads still waiting for the model are released by UploadChannel.close() once the worker has stopped.
        self._predict_executor.shutdown(wait=False, cancel_futures=True)
        self._preview_executor.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:
            log.exception("web server failed")
            self._error = self._error or WebError(f"web server failed: {exc}")
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = build_app(self._ctx, self.metrics, self._predict_executor, self._preview_executor)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
        await runner.setup()
        try:
            address = self._ctx.http.address
            try:
                await web.TCPSite(runner, address.host, address.port).start()
            except OSError as exc:
                self._error = WebError(f"cannot listen on {address}: {exc.strerror or exc}; "
                                       "is another program using it? set http.listen or --http")
                return
            port = runner.addresses[0][1]
            host = f"[{address.host}]" if ":" in address.host else address.host
            self.url = f"http://{host}:{port}/"
            log.info("web interface on %s%s", self.url, " (access token required)" if self._ctx.token else "")
            self._ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()
