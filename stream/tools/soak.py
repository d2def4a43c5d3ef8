"""`streamrec soak`: synthetic cameras with forced reconnects and wedged reads for a while; passes when
memory, threads, file descriptors and sockets stop growing after a warm-up and every camera keeps recovering."""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from typing import Optional, Sequence, TextIO

import torch

from capture.factory import SourceFactory
from capture.fault_injection import FaultSchedule, FlakySource
from capture.source import FrameSource
from capture.status import CameraSnapshot
from config.loader import validate
from config.schema import AppConfig, CameraConfig, ModelConfig
from inference.model import Classifier, TorchClassifier
from inference.preprocess import InputSpec
from stream.pipeline.app import Pipeline
from stream.tools.resources import ResourceSample, sample_resources
from stream.wire.subscriber import receive

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 1.0
WEDGE_S = READ_TIMEOUT_S + 0.5
"""A wedged read outlasts the read timeout (its reader is abandoned) and then returns (and is reclaimed)."""


@dataclass(frozen=True)
class SoakOptions:
    """How long, how many cameras, how often they break, and how much growth is tolerated."""

    minutes: float = 10.0
    cameras: int = 2
    reconnect_every_s: float = 5.0
    wedge_every: int = 5
    """Every this-many-th forced fault is a wedged read instead of an error (0: never)."""
    sample_every_s: float = 5.0
    warmup_fraction: float = 0.3
    rss_tolerance_mib: float = 24.0
    fd_tolerance: int = 4
    socket_tolerance: int = 2
    endpoint: str = "tcp://127.0.0.1:*"


@dataclass(frozen=True)
class SoakReport:
    """Samples, counts and the verdict of one soak."""

    start: ResourceSample
    baseline: ResourceSample
    """Median of the samples just after the warm-up."""
    end: ResourceSample
    """Median of the last samples."""
    reconnects: dict[str, int]
    abandoned_readers: dict[str, int]
    results: dict[str, int]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class _FlakyFactory:
    """Wraps each camera's real source in a FlakySource with that camera's fault schedule."""

    def __init__(self, options: SoakOptions) -> None:
        self._inner = SourceFactory()
        self._options = options
        self.schedules: dict[str, FaultSchedule] = {}

    def __call__(self, camera: CameraConfig) -> FrameSource:
        schedule = self.schedules.setdefault(
            camera.id, FaultSchedule(self._options.reconnect_every_s, self._options.wedge_every, WEDGE_S))
        return FlakySource(self._inner(camera), schedule)


class _Listener(threading.Thread):
    """A POS stand-in on the soak's publisher: counts results per camera and when each camera last had one."""

    def __init__(self, endpoint: str, stop: threading.Event) -> None:
        super().__init__(name="soak-listener", daemon=True)
        self._endpoint, self._stop_event = endpoint, stop
        self.results: dict[str, int] = {}
        self.last_result: dict[str, float] = {}

    def run(self) -> None:
        for _topic, payload in receive(self._endpoint, ("result/",), stop=self._stop_event):
            camera = payload["camera"]
            self.results[camera] = self.results.get(camera, 0) + 1
            self.last_result[camera] = time.monotonic()


def soak_config(options: SoakOptions) -> AppConfig:
    """Synthetic cameras that time out quickly and retry quickly, publishing on loopback, no window."""
    cameras = [
        {"id": f"soak{i}", "source": "synthetic", "seed": i, "width": 320, "height": 240, "fps": 15,
         "read_timeout_s": READ_TIMEOUT_S, "reconnect_initial_s": 0.1, "reconnect_max_s": 0.5}
        for i in range(options.cameras)
    ]
    return validate({"cameras": cameras, "publisher": {"endpoint": options.endpoint}, "overlay": {"enabled": False}})


def tiny_classifier() -> Classifier:
    """A small random CNN: the soak is about capture, queues and threads, not about recognizing anything."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 4),
    )
    return TorchClassifier(module, ("a", "b", "c", "d"), "soak-tiny", InputSpec.for_crop(64))


def run_soak(options: SoakOptions, stop: threading.Event, model: Optional[str] = None,
             out: Optional[TextIO] = None) -> SoakReport:
    """Run the soak until its time is up or `stop`; write the report as one JSON line to `out`."""
    if model:
        from inference.loader import load_classifier

        classifier = load_classifier(ModelConfig(spec=model))
    else:
        classifier = tiny_classifier()
    factory = _FlakyFactory(options)
    started = time.monotonic()
    samples = [sample_resources(0.0)]
    pipeline = Pipeline(soak_config(options), classifier, stop, source_factory=factory)
    pipeline.start()
    listener = _Listener(pipeline.publisher.endpoint, stop)
    listener.start()
    deadline = started + options.minutes * 60
    try:
        while not stop.wait(max(0.0, min(options.sample_every_s, deadline - time.monotonic()))):
            samples.append(sample_resources(time.monotonic() - started))
            _log_progress(samples[-1], pipeline, listener)
            if time.monotonic() >= deadline:
                break
        recent_results = {c: time.monotonic() - t for c, t in listener.last_result.items()}
    finally:
        pipeline.shutdown()
        listener.join(2.0)
    snapshots = {status.camera: status.snapshot() for status in pipeline.statuses}
    failed = [capture.name for capture in pipeline.captures if capture.failed]
    report = judge(samples, options, snapshots, failed, listener.results, recent_results)
    if out is not None:
        out.write(json.dumps(_summary(report), separators=(",", ":")) + "\n")
        out.flush()
    return report


def _log_progress(sample: ResourceSample, pipeline: Pipeline, listener: _Listener) -> None:
    snaps = [status.snapshot() for status in pipeline.statuses]
    log.info("soak %5.0f s: rss %.1f MiB, threads %d (python %d), fds %d, sockets %d; reconnects %d, "
             "abandoned readers %d (stuck now %d), results %d",
             sample.t_s, sample.rss_mib, sample.threads, sample.python_threads, sample.fds, sample.sockets,
             sum(s.reconnects for s in snaps), sum(s.abandoned_readers for s in snaps),
             sum(s.stuck_readers for s in snaps), sum(listener.results.values()))


def _median_sample(samples: Sequence[ResourceSample]) -> ResourceSample:
    return ResourceSample(
        t_s=samples[len(samples) // 2].t_s,
        rss_mib=statistics.median(s.rss_mib for s in samples),
        threads=int(statistics.median(s.threads for s in samples)),
        python_threads=int(statistics.median(s.python_threads for s in samples)),
        fds=int(statistics.median(s.fds for s in samples)),
        sockets=int(statistics.median(s.sockets for s in samples)),
    )


def judge(samples: Sequence[ResourceSample], options: SoakOptions, snapshots: dict[str, CameraSnapshot],
          failed_threads: Sequence[str], results: dict[str, int], since_last_result: dict[str, float]) -> SoakReport:
    """Compare the end with the state just after warm-up, and check that every camera kept recovering."""
    warmup_s = options.minutes * 60 * options.warmup_fraction
    warm = [s for s in samples if s.t_s >= warmup_s] or list(samples)
    window = max(1, min(3, len(warm) // 3))
    baseline, end = _median_sample(warm[:window]), _median_sample(warm[-window:])
    problems = []
    rss_allowed = max(options.rss_tolerance_mib, 0.1 * baseline.rss_mib)
    if end.rss_mib - baseline.rss_mib > rss_allowed:
        problems.append(f"memory grew {end.rss_mib - baseline.rss_mib:.1f} MiB after warm-up (allowed {rss_allowed:.1f})")
    if end.threads - baseline.threads > options.cameras:  # one wedged reader per camera may be in flight
        problems.append(f"threads grew from {baseline.threads} to {end.threads}")
    if end.fds - baseline.fds > options.fd_tolerance:
        problems.append(f"file descriptors grew from {baseline.fds} to {end.fds}")
    if end.sockets - baseline.sockets > options.socket_tolerance:
        problems.append(f"sockets grew from {baseline.sockets} to {end.sockets}")
    snaps = snapshots
    expected = int(options.minutes * 60 / (options.reconnect_every_s + WEDGE_S) / 2)
    for camera, snap in snaps.items():
        if snap.reconnects < expected:
            problems.append(f"{camera} reconnected {snap.reconnects} times, expected at least {expected}")
        if since_last_result.get(camera, float("inf")) > options.reconnect_every_s + WEDGE_S + 5:
            problems.append(f"{camera} had no result near the end: it did not recover from its last fault")
    problems += [f"{name} failed" for name in failed_threads]
    return SoakReport(samples[0], baseline, end, {c: s.reconnects for c, s in snaps.items()},
                      {c: s.abandoned_readers for c, s in snaps.items()}, dict(results), tuple(problems))


def _summary(report: SoakReport) -> dict:
    return {"ok": report.ok, "problems": list(report.problems), "start": asdict(report.start),
            "baseline": asdict(report.baseline), "end": asdict(report.end), "reconnects": report.reconnects,
            "abandoned_readers": report.abandoned_readers, "results": report.results}
