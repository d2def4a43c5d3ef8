"""The aiohttp application: the status page, its JSON, previews, /predict, "Add product", /healthz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from importlib import resources
from pathlib import Path

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from inference.enrollment import EnrollmentError
from inference.errors import ModelError
from stream.pipeline.uploads import UploadsBusy, UploadsClosed
from stream.web.auth import token_middleware
from stream.web.context import WebContext
from stream.web.enroll_desk import DeskBusy, EnrollDesk
from stream.web.images import ImageRejected
from stream.web.metrics import WebMetrics
from stream.web.predict import classify_upload, read_upload
from stream.web.preview import PreviewHub
from stream.web.status import status_document

log = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("stream.web").joinpath("static")))
MAX_PREDICTS_IN_FLIGHT = 32
"""More concurrent /predict requests are refused with 503 before their bodies are read (bounds memory)."""
SNAPSHOT_WAIT_S = 5.0
STREAM_IDLE_S = 5.0
MJPEG_BOUNDARY = "frame"

CTX = web.AppKey("ctx", WebContext)
HUB = web.AppKey("hub", PreviewHub)
METRICS = web.AppKey("metrics", WebMetrics)
PREDICT_EXECUTOR = web.AppKey("predict_executor", Executor)
TICKER = web.AppKey("ticker", asyncio.Task)
IN_FLIGHT = web.AppKey("in_flight", "InFlight")


class InFlight:
    """Counts /predict requests being served (only touched on the event loop, so no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    @contextlib.contextmanager
    def admit(self):
        """Yield True and count the request while under the limit; yield False when full."""
        if self.count >= self.limit:
            yield False
            return
        self.count += 1
        try:
            yield True
        finally:
            self.count -= 1


def build_app(ctx: WebContext, metrics: WebMetrics, predict_executor: Executor, preview_executor: Executor) -> web.Application:
    """Wire the routes; call on the event loop that will serve it."""
    middlewares = [json_errors] + ([token_middleware(ctx.token)] if ctx.token else [])
    app = web.Application(middlewares=middlewares, client_max_size=_max_upload_bytes(ctx) + 1024 * 1024)
    app[CTX], app[METRICS], app[PREDICT_EXECUTOR] = ctx, metrics, predict_executor
    app[IN_FLIGHT] = InFlight(MAX_PREDICTS_IN_FLIGHT)
    app[HUB] = PreviewHub(ctx.latest, ctx.statuses, ctx.http.preview_fps, ctx.http.preview_width, preview_executor,
                          on_encoded=lambda camera: metrics.preview_frames.labels(camera).inc())
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/preview/{camera}.jpg", preview_jpeg)
    app.router.add_get("/preview/{camera}.mjpg", preview_mjpeg)
    app.router.add_post("/predict", predict)
    app.router.add_post("/api/reload", api_reload)
    app.router.add_get("/api/enroll", enroll_state)
    app.router.add_post("/api/enroll", enroll_start)
    app.router.add_post("/api/enroll/confirm", enroll_confirm)
    app.router.add_post("/api/enroll/cancel", enroll_cancel)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    app.on_startup.append(_start_ticker)
    app.on_shutdown.append(_stop_ticker)
    return app


def _max_upload_bytes(ctx: WebContext) -> int:
    return int(ctx.http.max_upload_mb * 1_000_000)


def json_error(status: int, message: str, **headers: str) -> web.Response:
    """Every error of the API: `{"error": message}` with the status."""
    return web.json_response({"error": message}, status=status, headers=headers or None)


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Unexpected failures become a logged 500 with a JSON body; the server keeps running."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return json_error(500, "internal error; the service log has the details")


async def index(request: web.Request) -> web.StreamResponse:
    """The status page."""
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def api_status(request: web.Request) -> web.Response:
    """Cameras, counters, current top-k and health as JSON (the page polls it)."""
    return web.json_response(status_document(request.app[CTX]), headers={"Cache-Control": "no-store"})


async def api_reload(request: web.Request) -> web.Response:
    """Re-read the configuration, as SIGHUP does: 202 at once; the heartbeat's `model` and /api/status tell the outcome."""
    request.app[CTX].reload_requested.set()
    return web.json_response({"reload": "requested"}, status=202)


def _desk(request: web.Request) -> EnrollDesk:
    desk = request.app[CTX].enroll_desk
    if desk is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "adding products needs a model bundle (model.spec = a "
                                                         ".bundle file trained by streamrec finetune)"}),
                               content_type="application/json")
    return desk


async def _at_desk(request: web.Request, call, *args) -> web.Response:
    """Run a desk call off the event loop; its refusals become 400/409 JSON errors."""
    try:
        answer = await asyncio.get_running_loop().run_in_executor(request.app[PREDICT_EXECUTOR], call, *args)
    except DeskBusy as exc:
        return json_error(409, str(exc))
    except (EnrollmentError, ModelError) as exc:
        return json_error(400, str(exc))
    return web.json_response(answer, headers={"Cache-Control": "no-store"})


async def enroll_state(request: web.Request) -> web.Response:
    """The "Add product" session: idle, recording, checking, ready (views kept, preview), saved, failed, cancelled."""
    return web.json_response(_desk(request).document(), headers={"Cache-Control": "no-store"})


async def enroll_start(request: web.Request) -> web.Response:
    """Start recording: JSON {"camera", "label", "seconds" (default 10)}."""
    desk = _desk(request)
    try:
        body = await request.json()
        camera, label, seconds = str(body["camera"]), str(body.get("label", "")), float(body.get("seconds", 10))
    except (ValueError, KeyError, TypeError):
        return json_error(400, 'send JSON {"camera": ID, "label": NAME, "seconds": 10}')
    if camera not in request.app[HUB].cameras:
        return json_error(404, f"no camera {camera!r}")
    return await _at_desk(request, desk.start, camera, label, seconds)


async def enroll_confirm(request: web.Request) -> web.Response:
    """Save the checked product to the bundle's gallery; the running service recognizes it within seconds."""
    return await _at_desk(request, _desk(request).confirm)


async def enroll_cancel(request: web.Request) -> web.Response:
    """Drop the session without saving."""
    return await _at_desk(request, _desk(request).cancel)


def _camera(request: web.Request) -> str:
    camera = request.match_info["camera"]
    if camera not in request.app[HUB].cameras:
        raise web.HTTPNotFound(text=json.dumps({"error": f"no camera {camera!r}"}), content_type="application/json")
    return camera


async def preview_jpeg(request: web.Request) -> web.Response:
    """The camera's newest annotated JPEG; `?after=N` waits for a frame newer than N (the page paces itself so)."""
    camera = _camera(request)
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        return json_error(400, "after must be a frame number")
    frame = await request.app[HUB].next_frame(camera, after, SNAPSHOT_WAIT_S)
    if frame is None:
        return json_error(503, f"no new preview of {camera} yet", **{"Retry-After": "1"})
    return web.Response(body=frame.jpeg, content_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Preview-Frame": str(frame.number)})


async def preview_mjpeg(request: web.Request) -> web.StreamResponse:
    """The camera's annotated picture as an MJPEG stream, at most http.preview_fps frames a second."""
    camera = _camera(request)
    hub, limit = request.app[HUB], request.app[CTX].http.max_viewers
    if hub.streams >= limit:
        return json_error(503, f"{limit} preview streams are already open (http.max_viewers)", **{"Retry-After": "5"})
    hub.streams += 1
    response = web.StreamResponse(headers={
        "Content-Type": f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}", "Cache-Control": "no-store"})
    try:
        await response.prepare(request)
        number = 0
        while not hub.closed:
            frame = await hub.next_frame(camera, number, STREAM_IDLE_S)
            if frame is not None:
                number = frame.number
                head = f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n\r\n"
                await response.write(head.encode() + frame.jpeg + b"\r\n")
    except ConnectionResetError:
        pass  # the viewer went away
    finally:
        hub.streams -= 1
    return response


async def predict(request: web.Request) -> web.Response:
    """Classify one uploaded image with the running model; JSON top-k, or a JSON error."""
    with request.app[IN_FLIGHT].admit() as admitted:
        if admitted:
            response = await _predict(request)
        else:
            response = json_error(503, "too many uploads at once; try again shortly", **{"Retry-After": "1"})
    request.app[METRICS].predict_requests.labels(str(response.status)).inc()
    return response


async def _predict(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    try:
        data = await read_upload(request, _max_upload_bytes(ctx))
        answer = await asyncio.get_running_loop().run_in_executor(
            request.app[PREDICT_EXECUTOR], classify_upload, ctx.uploads, data, ctx.model_id)
    except ImageRejected as exc:
        return json_error(exc.status, exc.message)
    except UploadsBusy as exc:
        return json_error(503, f"the recognizer is busy: {exc}; try again shortly", **{"Retry-After": "1"})
    except (FutureTimeout, TimeoutError):
        return json_error(503, "the recognizer did not answer in time; try again shortly", **{"Retry-After": "2"})
    except UploadsClosed as exc:
        return json_error(503, str(exc))
    return web.json_response(answer)


async def healthz(request: web.Request) -> web.Response:
    """200 while the pipeline makes progress (the watchdog's notion), else 503 with the reasons; warnings name what a
    restart would not fix (a model server that does not answer). Never needs a token."""
    report = request.app[CTX].health.check()
    return web.json_response({"healthy": report.healthy, "reasons": list(report.reasons),
                              "warnings": list(report.warnings)},
                             status=200 if report.healthy else 503, headers={"Cache-Control": "no-store"})


async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus text format (or OpenMetrics when asked for) from this pipeline's own registry."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encoder(request.app[METRICS].registry), headers={"Content-Type": content_type})


async def _start_ticker(app: web.Application) -> None:
    app[TICKER] = asyncio.create_task(app[HUB].run(), name="web-preview-ticker")


async def _stop_ticker(app: web.Application) -> None:
    app[HUB].close()
    app[TICKER].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[TICKER]
