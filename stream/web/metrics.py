"""Prometheus metrics of one pipeline: a registry of its own, a collector that reads the existing counters at scrape time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from capture.status import CameraState
from stream.pipeline.uploads import UPLOAD_CAMERA
from stream.web.context import WebContext

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class PipelineCollector:
    """Reads camera statuses, worker stats, publisher counters and health each time Prometheus scrapes."""

    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx

    def _model_info(self) -> Metric:
        status = self._ctx.model.status()
        info = GaugeMetricFamily("streamrec_model_info", "1 for the model answering now: its id, backend, precision, "
                                 "state (loading, ready, unavailable) and whether a faster path is being built.",
                                 labels=["model", "backend", "precision", "state", "optimizing"])
        info.add_metric([status.id, status.backend, status.precision, status.state.value,
                         "true" if status.optimizing else "false"], 1.0)
        return info

    def collect(self) -> Iterator[Metric]:
        """One family per metric; counters are totals since start."""
        ctx = self._ctx
        families = {
            "captured": CounterMetricFamily("streamrec_frames_captured", "Frames delivered by the camera.", labels=["camera"]),
            "dropped": CounterMetricFamily("streamrec_frames_dropped", "Frames dropped from the camera's full queue.", labels=["camera"]),
            "classified": CounterMetricFamily("streamrec_frames_classified", "Frames of the camera classified by the model.", labels=["camera"]),
            "lost": CounterMetricFamily("streamrec_frames_lost", "Frames of the camera in batches that failed (e.g. a "
                                        "model server down or too slow).", labels=["camera"]),
            "reconnects": CounterMetricFamily("streamrec_camera_reconnects", "Times the camera was lost and retried.", labels=["camera"]),
            "fps": GaugeMetricFamily("streamrec_camera_fps", "Frames per second delivered over the last 2 s.", labels=["camera"]),
        }
        state = GaugeMetricFamily("streamrec_camera_state", "1 for the camera's current state, 0 for the others.", labels=["camera", "state"])
        for status in ctx.statuses:
            snap = status.snapshot()
            for key, value in (("captured", snap.captured), ("dropped", snap.dropped), ("reconnects", snap.reconnects),
                               ("classified", ctx.stats.classified(snap.camera)), ("lost", ctx.stats.lost(snap.camera)),
                               ("fps", snap.fps)):
                families[key].add_metric([snap.camera], value)
            for candidate in CameraState:
                state.add_metric([snap.camera, candidate.value], 1.0 if candidate is snap.state else 0.0)
        yield from families.values()
        yield state
        yield CounterMetricFamily("streamrec_uploads_classified", "Uploaded images classified (POST /predict).",
                                  value=ctx.stats.classified(UPLOAD_CAMERA))
        yield self._inference_seconds()
        yield self._batch_sizes()
        yield CounterMetricFamily("streamrec_failed_batches", "Model calls that raised; their frames are lost.",
                                  value=ctx.stats.failed_batches)
        published = CounterMetricFamily("streamrec_published_messages", "Messages sent on the ZeroMQ publisher.",
                                        value=ctx.publisher.sent)
        drops = CounterMetricFamily("streamrec_publish_dropped", "Messages not published: results dropped from the "
                                    "publisher queue, or refused by ZeroMQ (a subscriber past send_hwm).", labels=["stage"])
        drops.add_metric(["queue"], ctx.publisher_thread.queue_dropped)
        drops.add_metric(["zmq"], ctx.publisher.dropped)
        yield published
        yield drops
        yield self._model_info()
        yield GaugeMetricFamily("streamrec_healthy", "1 while the pipeline makes progress (as /healthz and the watchdog see it).",
                                value=1.0 if ctx.health.check().healthy else 0.0)

    def _inference_seconds(self) -> HistogramMetricFamily:
        snap = self._ctx.stats.inference_seconds()
        buckets = [(_bound(b), c) for b, c in zip((*snap.bounds, math.inf), snap.cumulative)]
        return HistogramMetricFamily("streamrec_inference_seconds", "Time per batch: preprocessing, model and top-k.",
                                     buckets=buckets, sum_value=snap.sum)

    def _batch_sizes(self) -> HistogramMetricFamily:
        counts = self._ctx.stats.batch_size_counts()
        buckets = [(_bound(b), sum(n for size, n in counts.items() if size <= b)) for b in BATCH_SIZE_BUCKETS]
        buckets.append(("+Inf", sum(counts.values())))
        total = float(sum(size * n for size, n in counts.items()))
        return HistogramMetricFamily("streamrec_batch_size", "Frames per model call (camera frames and uploads).",
                                     buckets=buckets, sum_value=total)


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


@dataclass(frozen=True)
class WebMetrics:
    """The registry /metrics serves, and the counters the web server itself moves."""

    registry: CollectorRegistry
    predict_requests: Counter
    preview_frames: Counter

    @classmethod
    def for_context(cls, ctx: WebContext) -> "WebMetrics":
        """A fresh registry (never the global default) holding the pipeline collector and the web counters."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(PipelineCollector(ctx))
        return cls(
            registry=registry,
            predict_requests=Counter("streamrec_http_predict_requests", "POST /predict requests by HTTP status.",
                                     ["code"], registry=registry),
            preview_frames=Counter("streamrec_preview_frames_encoded", "Preview JPEGs encoded (once per tick, shared by "
                                   "all viewers).", ["camera"], registry=registry),
        )
