"""Signal handlers that only set the stop event (a second Ctrl-C forces an exit)."""

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
