"""The per-camera part of a heartbeat: state, totals, rate and the current stable item."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from capture.status import CameraStatus
from stream.pipeline.stats import WorkerStats


def camera_entries(
    statuses: Sequence[CameraStatus],
    stats: WorkerStats,
    current_item: Callable[[str], Optional[str]],
    now: Optional[float] = None,
) -> dict[str, dict[str, Any]]:
    """`cameras` of a heartbeat: {id: {state, captured, dropped, classified, fps, item}}."""
    entries: dict[str, dict[str, Any]] = {}
    for status in statuses:
        snap = status.snapshot(now)
        entries[snap.camera] = {
            "state": snap.state.value,
            "captured": snap.captured,
            "dropped": snap.dropped + stats.lost(snap.camera),
            "classified": stats.classified(snap.camera),
            "fps": round(snap.fps, 2),
            "item": current_item(snap.camera),
        }
    return entries
