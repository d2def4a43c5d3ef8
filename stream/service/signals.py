"""Signal handlers that only set an event: stop (a second Ctrl-C forces an exit) and reload."""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger(__name__)

FORCED_EXIT = 130


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set `stop`; a second SIGINT while stopping exits at once."""

    def handle(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            os._exit(FORCED_EXIT)
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def install_reload_handler(requested: threading.Event) -> None:
    """SIGHUP (what `systemctl reload` sends) sets `requested`; the reload thread does the work."""

    def handle(_signum: int, _frame: object) -> None:
        requested.set()

    signal.signal(signal.SIGHUP, handle)
