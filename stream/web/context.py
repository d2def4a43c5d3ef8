"""What the web interface reads from the running pipeline, in one frozen bundle."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from capture.status import CameraStatus
from config.schema import HttpConfig
from stream.overlay.latest import LatestResults
from stream.pipeline.health import PipelineHealth
from stream.pipeline.model_slot import ModelSlot
from stream.pipeline.stats import WorkerStats
from stream.pipeline.uploads import UploadChannel
from stream.wire.publisher import PublisherThread, ZmqPublisher

if TYPE_CHECKING:
    from stream.web.enroll_desk import EnrollDesk


@dataclass(frozen=True)
class WebContext:
    """The pipeline's parts the web server uses; built once by the composition root."""

    http: HttpConfig
    model: ModelSlot
    statuses: Sequence[CameraStatus]
    stats: WorkerStats
    latest: LatestResults
    uploads: UploadChannel
    health: PipelineHealth
    publisher: ZmqPublisher
    publisher_thread: PublisherThread
    current_item: Callable[[str], Optional[str]]
    reload_requested: threading.Event
    enroll_desk: Optional["EnrollDesk"] = None
    """"Add product" for the running bundle; None when the model is not a bundle file."""
    token: Optional[str] = field(default=None, repr=False)
    started_mono: float = field(default_factory=time.monotonic)

    @property
    def model_id(self) -> str:
        """The id of the model answering now."""
        return self.model.status().id

