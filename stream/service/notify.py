"""systemd's notify protocol: READY, STATUS, WATCHDOG (only while the pipeline makes progress) and STOPPING."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable, Mapping, Optional, Sequence

from capture.status import CameraState, CameraStatus
from stream.pipeline.health import HealthReport

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 5.0
JOIN_S = 1.0


class SdNotifier:
    """Sends datagrams to `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace); a no-op without one."""

    def __init__(self, address: Optional[str]) -> None:
        self.address = address or None
        self._socket: Optional[socket.socket] = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "SdNotifier":
        """The notifier systemd asked for, or a disabled one when not started by systemd."""
        return cls(environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify."""
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send `KEY=value` fields as one datagram; False (logged once) when it cannot be delivered."""
        if self.address is None:
            return False
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(fields).encode("utf-8"), address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
            self._failed = True
            return False
        return True

    def close(self) -> None:
        """Close the datagram socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval(environ: Mapping[str, str] = os.environ, pid: Optional[int] = None) -> Optional[float]:
    """How often to pet systemd's watchdog (half of `WatchdogSec=`), or None when it is off or meant for another process."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    target = environ.get("WATCHDOG_PID")
    if usec <= 0 or (target and target != str(os.getpid() if pid is None else pid)):
        return None
    return usec / 1e6 / 2


def status_line(statuses: Sequence[CameraStatus], report: Optional[HealthReport] = None, model: str = "") -> str:
    """One line for `systemctl status`: `cam0 streaming 30 fps, cam1 reconnecting; model … on torch int8`, led by
    any health problem."""
    parts = []
    for status in statuses:
        snap = status.snapshot()
        fps = f" {snap.fps:.0f} fps" if snap.state is CameraState.STREAMING else ""
        parts.append(f"{snap.camera} {snap.state.value}{fps}")
    cameras = ", ".join(parts) or "no cameras"
    if model:
        cameras = f"{cameras}; {model}"
    if report is not None and not report.healthy:
        return f"unhealthy ({'; '.join(report.reasons)}): {cameras}"
    return cameras


class NotifierThread(threading.Thread):
    """Tells systemd the service is ready, how the cameras are doing, and that it is alive while `health()` says so.

    Runs until `stop` is set (the pipeline's stop event), then says STOPPING=1."""

    def __init__(
        self,
        notifier: SdNotifier,
        health: Callable[[], HealthReport],
        status: Callable[[Optional[HealthReport]], str],
        stop: threading.Event,
        watchdog_s: Optional[float] = None,
        status_interval_s: float = STATUS_INTERVAL_S,
    ) -> None:
        super().__init__(name="sd-notify", daemon=True)
        self._notifier = notifier
        self._health = health
        self._status = status
        self._stop_event = stop
        self._watchdog_s = watchdog_s
        self._status_interval_s = status_interval_s
        self.petting = True
        """False while the watchdog is withheld because the pipeline is unhealthy."""

    @classmethod
    def from_environ(cls, health: Callable[[], HealthReport], statuses: Sequence[CameraStatus], stop: threading.Event,
                     environ: Mapping[str, str] = os.environ,
                     model: Callable[[], str] = lambda: "") -> "NotifierThread":
        """A notifier for the socket and watchdog interval systemd put in the environment; `model()` describes the
        model in use for the STATUS= line."""
        return cls(SdNotifier.from_environ(environ), health, lambda report: status_line(statuses, report, model()),
                   stop, watchdog_interval(environ))

    @property
    def enabled(self) -> bool:
        """True when running under systemd (there is a socket to notify)."""
        return self._notifier.enabled

    def run(self) -> None:
        try:
            self._notifier.send("READY=1", f"STATUS={self._status(None)}")
            self._loop()
        except Exception:
            log.exception("sd_notify thread failed; systemd's watchdog will restart the service")
        finally:
            self._notifier.send("STOPPING=1", "STATUS=stopping")

    def _loop(self) -> None:
        now = time.monotonic()
        next_status = now + self._status_interval_s
        next_watchdog = now  # pet at once: READY starts systemd's watchdog clock
        while not self._stop_event.is_set():
            now = time.monotonic()
            report = None
            if self._watchdog_s is not None and now >= next_watchdog:
                report = self._health()
                self._watchdog(report)
                next_watchdog = now + self._watchdog_s
            if now >= next_status:
                self._notifier.send(f"STATUS={self._status(report or self._health())}")
                next_status = now + self._status_interval_s
            due = next_status if self._watchdog_s is None else min(next_status, next_watchdog)
            self._stop_event.wait(max(0.01, due - time.monotonic()))

    def _watchdog(self, report: HealthReport) -> None:
        if report.healthy:
            if not self.petting:
                log.info("pipeline healthy again; watchdog resumed")
            self.petting = True
            self._notifier.send("WATCHDOG=1")
            return
        if self.petting:
            log.error("pipeline unhealthy, withholding the systemd watchdog (systemd will restart the service): %s",
                      "; ".join(report.reasons))
        self.petting = False

    def reloading(self, active: bool) -> None:
        """RELOADING=1 (with MONOTONIC_USEC, which systemd 253+ wants) when a reload starts; READY=1 when it ends."""
        if active:
            self._notifier.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                                "STATUS=reloading")
        else:
            self._notifier.send("READY=1", f"STATUS={self._status(None)}")

    def close(self, timeout_s: float = JOIN_S) -> None:
        """Join the thread (after `stop` was set) and close the socket."""
        if self.ident is not None:
            self.join(timeout_s)
        self._notifier.close()
