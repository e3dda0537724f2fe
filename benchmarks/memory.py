"""Memory and the engine's whole-job figures: peak RSS of the commands, the time from Ctrl-C to
exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLI = [sys.executable, "-m", "batchrecall"]


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_kib: int
    exit_code: int


def measure_cli(args: list[str], tmp: Path) -> Measured:
    """One `batchrecall` command in a subprocess: wall time and peak RSS (/usr/bin/time)."""
    report = tmp / "time.txt"
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(report), *CLI, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    seconds = time.perf_counter() - start
    return Measured(
        seconds=seconds,
        peak_rss_kib=int(report.read_text().split()[-1]),
        exit_code=done.returncode,
    )


# -- Ctrl-C ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interrupted:
    rows_at_signal: int
    rows_after: int
    exit_seconds: float
    exit_code: int
    peak_rss_kib: int
    gave_up: bool
    """The run had not exited by the deadline and was killed: the figures are those so far."""

    @property
    def tail_rows_per_s(self) -> float:
        return self.rows_after / self.exit_seconds if self.exit_seconds > 0 else 0.0

    def exit_text(self) -> str:
        if self.gave_up:
            return f"not out after {self.exit_seconds:.0f} s (killed)"
        return f"exit {self.exit_code} in {self.exit_seconds:.1f} s"


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(word) for word in text.split()]


def interrupt_run(
    args: list[str],
    out: Path,
    tmp: Path,
    *,
    after: Callable[[int, float], bool],
    give_up_after: float,
) -> Interrupted:
    """`batchrecall run ...` in a subprocess, SIGINT once `after(rows, seconds)` holds; the time
    from the signal to the exit, and the rows written meanwhile (the stop's tail). A run still
    going `give_up_after` seconds after the signal is killed (its figures are those so far)."""
    report = tmp / "time-run.txt"
    report.unlink(missing_ok=True)
    process = subprocess.Popen(
        ["/usr/bin/time", "-f", "%M", "-o", str(report), *CLI, *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    start = time.monotonic()
    gave_up = False
    try:
        while process.poll() is None and not after(_count_lines(out), time.monotonic() - start):
            time.sleep(0.05)
        rows = _count_lines(out)
        signalled = time.monotonic()
        if process.poll() is not None:
            raise RuntimeError(f"the run ended (exit {process.returncode}) before its Ctrl-C")
        # /usr/bin/time ignores SIGINT while it waits: the signal reaches the command only.
        os.killpg(process.pid, signal.SIGINT)
        try:
            code = process.wait(timeout=give_up_after)
        except subprocess.TimeoutExpired:
            gave_up = True
            rows_then = _count_lines(out)
            for child in _children(process.pid):  # /usr/bin/time then reports the peak RSS
                os.kill(child, signal.SIGKILL)
            code = process.wait(timeout=60)
        exit_seconds = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    rows_after = (rows_then if gave_up else _count_lines(out)) - rows
    return Interrupted(
        rows_at_signal=rows,
        rows_after=rows_after,
        exit_seconds=exit_seconds,
        exit_code=code,
        peak_rss_kib=_peak_kib(report),
        gave_up=gave_up,
    )


def _peak_kib(report: Path) -> int:
    if not report.exists():
        return 0
    numbers = [word for word in report.read_text().split() if word.isdigit()]
    return int(numbers[-1]) if numbers else 0
