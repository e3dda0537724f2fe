"""A server for the benchmarks in a process of its own, spoken to over loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serving(module: str, *args: str, stop_within_s: float = 10) -> Iterator[int]:
    """`python -m module args...`, which prints its port on its first line and serves until its
    standard input closes; yields the port."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=stop_within_s)
