"""The engine's flow: a job sorted by lane (every lane should start at once), and how many times
each command parses its job files (counted, not assumed)."""

from __future__ import annotations

import contextlib
import io
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from batchrecall.cli.main import main as cli_main
from batchrecall.intake import reader
from benchmarks.vendor_server import Served

CLI = [sys.executable, "-m", "batchrecall"]
APPS = ("a", "b", "c")
LANE_RATE = 100.0
_FIRST_ID = 880_000_000


def sorted_job(
    folder: Path, rows_a_lane: int, *, files: bool = False, one_app: str | None = None
) -> list[Path]:
    """Yunxin recalls of apps a, b and c: every row of a, then b's, then c's, in one job file,
    or (`files`) one file an app, named one after another on the command line; `one_app`: the
    same rows, all of that one app (one lane)."""
    name = f"one-app-{one_app}" if one_app else "sorted"
    paths = (
        [folder / f"{name}-{app}.jsonl" for app in APPS] if files else [folder / f"{name}.jsonl"]
    )
    handles = [path.open("wb") for path in paths]
    try:
        for n, app in enumerate(APPS):
            out = handles[n if files else 0]
            for i in range(rows_a_lane):
                row = {
                    "vendor": "yunxin",
                    "app": one_app or app,
                    "op": "recall",
                    "conversation_id": "a|1|b",
                    "message_server_id": str(_FIRST_ID + n * 10_000_000 + i),
                }
                out.write(orjson.dumps(row) + b"\n")
    finally:
        for handle in handles:
            handle.close()
    return paths


def lanes_config(served: Served, folder: Path, *, rate: float = LANE_RATE) -> Path:
    """The emulators' config with Yunxin apps a, b and c, each its own lane at `rate`."""
    text = served.config_path.read_text(encoding="utf-8")
    start = text.index("[yunxin.default]")
    end = text.find("\n[", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    section = "\n".join(row for row in section.splitlines() if not row.strip().startswith("rate"))
    lanes = [
        section.replace("[yunxin.default]", f"[yunxin.{app}]").rstrip() + f"\nrate = {rate}\n"
        for app in APPS
    ]
    config = folder / f"sorted-lanes-{rate:g}.toml"
    config.write_text(text + "\n" + "\n".join(lanes), encoding="utf-8")
    return config


@dataclass(frozen=True)
class LaneRun:
    seconds: float
    """From the command's start to its exit."""
    starts: dict[str, float]
    """Each app's first request, in seconds after the first request of the run."""
    exit_code: int
    cpu_s: float
    """The run's CPU time, user and system."""


def run_lanes(served: Served, config: Path, jobs: list[Path], out: Path) -> LaneRun:
    """`batchrecall run JOBS --config ... --yes` in a process of its own, timed; when each lane's
    first request reached the vendor."""
    already = len(served.requests())
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    words = ["run", *map(str, jobs), "--config", str(config), "--yes", "--no-progress"]
    done = subprocess.run(
        [*CLI, *words, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    first: dict[str, float] = {}
    for entry in served.requests()[already:]:
        for item in entry.get("items") or []:
            if int(item) < _FIRST_ID:
                continue  # the server's warm-up
            app = APPS[(int(item) - _FIRST_ID) // 10_000_000]
            first[app] = min(first.get(app, entry["time"]), entry["time"])
    earliest = min(first.values(), default=0.0)
    return LaneRun(
        seconds=seconds,
        starts={app: at - earliest for app, at in sorted(first.items())},
        exit_code=done.returncode,
        cpu_s=cpu_s,
    )


# -- parses -----------------------------------------------------------------------------------


@contextmanager
def counting_parses() -> Iterator[Counter[str]]:
    """Counts every job file the reader opens to parse (each `read_job` call opens once)."""
    counts: Counter[str] = Counter()
    original = reader._open_file

    def counted(path: Path) -> Any:
        counts[str(path)] += 1
        return original(path)

    reader._open_file = counted
    try:
        yield counts
    finally:
        reader._open_file = original


def parses_per_command(job: Path, out: Path) -> dict[str, int]:
    """How many times `run --emulate --yes`, `plan`, `validate` and `report` each parse the job
    (in this process, as the command line runs them)."""
    out.unlink(missing_ok=True)
    commands = {
        "run": ["run", str(job), "--emulate", "--yes", "--no-progress", "--out", str(out)],
        "plan": ["plan", str(job)],
        "validate": ["validate", str(job)],
        "report": ["report", str(out)],
    }
    figures: dict[str, int] = {}
    for name, words in commands.items():
        with counting_parses() as counts, _quiet():
            cli_main(words)
        figures[name] = counts[str(job)]
    return figures


@contextmanager
def _quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield
