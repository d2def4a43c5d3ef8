"""The fast exit keeps the exit code, buffered output, log records and other exit handlers."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PROGRAM = """
import atexit, logging, sys
from stream.service.process_exit import exit_after_cleanup

def main():
    logging.basicConfig(filename=sys.argv[2], level=logging.INFO)
    atexit.register(lambda: open(sys.argv[3], "w").write("ran"))
    print("buffered line", end="")
    logging.info("logged line")
    if sys.argv[1] == "usage":
        sys.exit(2)
    if sys.argv[1] == "crash":
        raise RuntimeError("boom")
    return int(sys.argv[1])

exit_after_cleanup(main)
"""


@pytest.mark.parametrize("how, code", [("0", 0), ("3", 3), ("usage", 2), ("crash", 1)])
def test_exit_code_output_logs_and_exit_handlers_survive(tmp_path: Path, how: str, code: int):
    log, marker = tmp_path / "log.txt", tmp_path / "atexit.txt"
    done = subprocess.run([sys.executable, "-c", PROGRAM, how, str(log), str(marker)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr
    assert done.stdout == "buffered line"
    assert "logged line" in log.read_text()
    assert marker.read_text() == "ran"
    assert ("RuntimeError: boom" in done.stderr) == (how == "crash")
