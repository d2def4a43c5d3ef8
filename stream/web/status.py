"""The JSON the status page polls: every camera's state, counters and current top-k, and the pipeline's health."""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

from capture.status import CameraStatus
from inference.topk import Prediction
from stream.web.context import WebContext


def topk_json(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    """Predictions in the wire format's `topk` shape, best first."""
    return [{"label": p.label, "index": p.index, "score": round(p.score, 6), "source": p.source} for p in predictions]


def status_document(ctx: WebContext, now: Optional[float] = None) -> dict[str, Any]:
    """{model, model_status, uptime_s, healthy, reasons, preview, max_upload_mb, can_add_products, cameras: [...]}
    for `GET /api/status`."""
    now = time.monotonic() if now is None else now
    report = ctx.health.check(now)
    return {
        "model": ctx.model_id,
        "model_status": _model_status(ctx),
        "uptime_s": round(now - ctx.started_mono, 1),
        "healthy": report.healthy,
        "reasons": list(report.reasons),
        "preview": {"fps": ctx.http.preview_fps, "width": ctx.http.preview_width},
        "max_upload_mb": ctx.http.max_upload_mb,
        "can_add_products": ctx.enroll_desk is not None,
        "cameras": [_camera(ctx, status, now) for status in ctx.statuses],
    }


def _model_status(ctx: WebContext) -> dict[str, Any]:
    """The heartbeat's `model` object, with the operator's last note ("" when there is none)."""
    status = ctx.model.status()
    return {**status.wire(), "note": status.note}


def _camera(ctx: WebContext, status: CameraStatus, now: float) -> dict[str, Any]:
    camera = status.camera
    snap = status.snapshot(now)
    result = ctx.latest.latest(camera)
    return {
        "id": camera,
        "source": snap.source,
        "state": snap.state.value,
        "fps": round(snap.fps, 1),
        "latency_ms": None if result is None else round((result.classified_mono - result.frame.captured_mono) * 1000, 1),
        "result_age_s": None if result is None else round(now - result.frame.captured_mono, 2),
        "captured": snap.captured,
        "dropped": snap.dropped + ctx.stats.lost(camera),
        "classified": ctx.stats.classified(camera),
        "reconnects": snap.reconnects,
        "item": ctx.current_item(camera),
        "last_error": snap.last_error,
        "topk": topk_json(result.topk) if result else [],
        "unknown": bool(result.unknown) if result else False,
    }
