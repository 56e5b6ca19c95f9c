"""Running the ``srflow`` command in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys

SRFLOW = [sys.executable, "-m", "cli.main"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``srflow ARGS``: captured stdout/stderr, no standard input, 5-minute limit."""
    return subprocess.run([*SRFLOW, *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
