"""What the web interface reads from the running pipeline, in one frozen bundle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from capture.status import CameraStatus
from config.schema import HttpConfig
from stream.health import PipelineHealth
from stream.latest import LatestResults
from stream.publisher import PublisherThread, ZmqPublisher
from stream.stats import WorkerStats
from stream.uploads import UploadChannel

if TYPE_CHECKING:
    from stream.app import Pipeline


@dataclass(frozen=True)
class WebContext:
    """The pipeline's parts the web server uses; built once by the composition root."""

    http: HttpConfig
    model_id: str
    statuses: Sequence[CameraStatus]
    stats: WorkerStats
    latest: LatestResults
    uploads: UploadChannel
    health: PipelineHealth
    publisher: ZmqPublisher
    publisher_thread: PublisherThread
    current_item: Callable[[str], Optional[str]]
    token: Optional[str] = field(default=None, repr=False)
    started_mono: float = field(default_factory=time.monotonic)

    @classmethod
    def from_pipeline(cls, pipeline: "Pipeline", latest: LatestResults, model_id: str, token: Optional[str]) -> "WebContext":
        """Take the parts from a built Pipeline."""
        return cls(
            http=pipeline.config.http, model_id=model_id, statuses=pipeline.statuses, stats=pipeline.stats,
            latest=latest, uploads=pipeline.uploads, health=pipeline.health, publisher=pipeline.publisher,
            publisher_thread=pipeline.publisher_thread, current_item=pipeline.tracker.current_item, token=token,
        )
