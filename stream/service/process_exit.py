"""Leave the process without the interpreter's teardown, which takes 0.7-1.5 s once torch is imported."""

from __future__ import annotations

import atexit
import logging
import os
import sys
from typing import Callable, List


def exit_after_cleanup(main: Callable[[], int]) -> None:
    """Run `main`, let threads finish and every exit handler run, then end the process with its code.

    Python's teardown frees every object of every module one by one (torch alone has hundreds
    of thousands), which made a SIGTERM stop take over 2 s on a loaded machine. Nothing of
    streamrec's needs it: sockets, files and threads are closed by the time `main` returns.
    """
    codes: List[int] = []
    atexit.register(_exit_now, codes)  # registered first, so it runs after every other exit handler
    try:
        code = main()
    except SystemExit as exc:  # argparse's usage errors and --help
        codes.append(_exit_code(exc.code))
        raise
    codes.append(code)
    sys.exit(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _exit_now(codes: List[int]) -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(codes[0] if codes else 1)
