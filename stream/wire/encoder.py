"""The ZeroMQ wire format, version 1: every message is [topic, JSON payload], built only here."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable, Mapping, Optional

from stream.pipeline.result import ItemEvent, Result

WIRE_VERSION = 1
HEARTBEAT_TOPIC = "heartbeat"
Message = tuple[bytes, bytes]


def new_boot_id() -> str:
    """A random id for this process run, so subscribers can tell a restart from lost messages."""
    return uuid.uuid4().hex[:16]


class WireEncoder:
    """Numbers every message (publisher-wide `seq`) and renders payloads exactly as DESIGN.md fixes them."""

    def __init__(self, boot: str, clock: Callable[[], float] = time.time) -> None:
        self.boot = boot
        self._clock = clock
        self._seq = 0

    def result(self, result: Result, latency_ms: float, stale: bool) -> Message:
        """A `result/<camera>` message."""
        frame = result.frame
        payload = self._envelope("result")
        payload.update(
            camera=frame.camera,
            frame_seq=frame.seq,
            captured_at=round(frame.captured_at, 6),
            latency_ms=round(latency_ms, 2),
            model=result.model,
            topk=[{"label": p.label, "index": p.index, "score": round(p.score, 6), "source": p.source}
                  for p in result.topk],
        )
        if result.unknown_score is not None:
            payload.update(unknown_score=round(result.unknown_score, 4), unknown=result.unknown)
        if result.second_look:
            payload["second_look"] = True
        if result.unconfirmed:
            payload["unconfirmed"] = True
        if result.reused:
            payload["reused"] = True
        if stale:
            payload["stale"] = True
        return self._encode(f"result/{frame.camera}", payload)

    def event(self, event: ItemEvent) -> Message:
        """An `event/<camera>` message."""
        payload = self._envelope("event")
        payload.update(
            camera=event.camera,
            event=event.kind.value,
            event_id=event.event_id,
            label=event.label,
            index=event.index,
            score=round(event.score, 6),
            frames=event.frames,
        )
        if event.candidates:
            payload["candidates"] = [{"label": p.label, "index": p.index, "score": round(p.score, 6), "source": p.source}
                                     for p in event.candidates]
        if event.reason:
            payload["reason"] = event.reason
        return self._encode(f"event/{event.camera}", payload)

    def heartbeat(self, uptime_s: float, cameras: Mapping[str, Mapping[str, Any]],
                  model: Optional[Mapping[str, Any]] = None) -> Message:
        """A `heartbeat` message with every camera's state and counters, and the model in use when given."""
        payload = self._envelope("heartbeat")
        payload.update(uptime_s=round(uptime_s, 3), cameras={k: dict(v) for k, v in cameras.items()})
        if model is not None:
            payload["model"] = dict(model)
        return self._encode(HEARTBEAT_TOPIC, payload)

    def _envelope(self, kind: str) -> dict[str, Any]:
        self._seq += 1
        return {"v": WIRE_VERSION, "type": kind, "seq": self._seq, "ts": round(self._clock(), 6), "boot": self.boot}

    @staticmethod
    def _encode(topic: str, payload: dict[str, Any]) -> Message:
        return topic.encode("ascii"), json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
