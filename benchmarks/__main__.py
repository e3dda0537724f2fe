"""`make bench`: throughput and memory, as medians and ratios measured in one run.

Everything talks to the in-process emulators only; nothing leaves the process.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import anyio
import httpx
import orjson

from batchrecall.config import RunSettings, parse_config
from batchrecall.emulators.common import EmulatorSettings
from batchrecall.emulators.seeding import seed_jobs
from batchrecall.emulators.server import EmulatorSet
from batchrecall.intake.reader import read_job
from batchrecall.logs import configure_logging
from batchrecall.models import JobRef, LaneKey, Vendor
from batchrecall.run.runner import RunRequest, run_request

REPEATS = 3


def _median_time(action: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _easemob_job(path: Path, n: int) -> Path:
    with path.open("wb") as handle:
        for i in range(n):
            row = {
                "vendor": "easemob",
                "op": "recall",
                "msg_id": str(1_500_000_000_000_000_000 + i),
                "to": f"user-{i % 97}",
                "chat_type": "chat",
                "ref": "BENCH",
            }
            handle.write(orjson.dumps(row) + b"\n")
    return path


def _read_all(path: Path) -> int:
    return sum(1 for _ in read_job(path))


def _peak_memory(action: Callable[[], object]) -> int:
    tracemalloc.start()
    action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def bench_reader(tmp: Path) -> None:
    small = _easemob_job(tmp / "small.jsonl", 25_000)
    large = _easemob_job(tmp / "large.jsonl", 200_000)
    seconds = _median_time(lambda: _read_all(large))
    small_peak = _peak_memory(lambda: _read_all(small))
    large_peak = _peak_memory(lambda: _read_all(large))
    print("job reader (JSONL, validation included)")
    print(f"  200,000 rows: median {seconds:.2f} s = {200_000 / seconds:,.0f} rows/s")
    print(
        f"  peak memory: 25,000 rows {small_peak / 1024:,.0f} KiB, 200,000 rows "
        f"{large_peak / 1024:,.0f} KiB (ratio {large_peak / small_peak:.2f} for 8x the rows)"
    )


_PLAN_RSS = """
import resource, sys
from pathlib import Path
from batchrecall.models import JobRef
from batchrecall.run.runner import plan_job
path = Path(sys.argv[1])
plan_job([JobRef(path=path, name=str(path))], config=None)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _plan_rss_kib(job: Path) -> int:
    """Peak resident memory of a process that plans `job` (SQLite's own memory included)."""
    done = subprocess.run(
        [sys.executable, "-c", _PLAN_RSS, str(job)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


def bench_plan_memory(tmp: Path) -> None:
    small = _easemob_job(tmp / "plan-small.jsonl", 50_000)
    large = _easemob_job(tmp / "plan-large.jsonl", 400_000)
    small_rss = statistics.median(_plan_rss_kib(small) for _ in range(REPEATS))
    large_rss = statistics.median(_plan_rss_kib(large) for _ in range(REPEATS))
    print("plan with duplicate detection (every item remembered)")
    print(
        f"  peak RSS: 50,000 items {small_rss / 1024:,.0f} MiB, 400,000 items "
        f"{large_rss / 1024:,.0f} MiB (ratio {large_rss / small_rss:.2f} for 8x the items)"
    )


def _run_once(job: Path, *, batch: bool, rate: float) -> float:
    emulators = EmulatorSet(EmulatorSettings())
    seed_jobs(emulators, [job])
    config = parse_config(
        tomllib.loads(emulators.config_toml("http://127.0.0.1")), environ={}, source="bench"
    )
    key = LaneKey(vendor=Vendor.EASEMOB, app="default")
    config = replace(config.with_rate(key, rate), run=RunSettings(concurrency=64))
    lanes = dict(config.lanes)
    lanes[key] = replace(lanes[key], batch_recall=batch)
    config = replace(config, lanes=lanes)
    out = job.with_suffix(".results.jsonl")
    out.unlink(missing_ok=True)
    request = RunRequest(
        jobs=[JobRef(path=job, name=str(job))],
        config=config,
        out=out,
        fmt="jsonl",
        transport=httpx.ASGITransport(app=emulators.app),
    )
    start = time.perf_counter()
    summary = anyio.run(run_request, request)
    elapsed = time.perf_counter() - start
    assert summary.statuses.get("ok") == summary.items, summary.statuses
    return elapsed


def bench_engine(tmp: Path) -> None:
    n = 6_000
    job = _easemob_job(tmp / "engine.jsonl", n)
    batched = statistics.median(_run_once(job, batch=True, rate=1_000) for _ in range(REPEATS))
    single = statistics.median(_run_once(job, batch=False, rate=1_000) for _ in range(REPEATS))
    print(f"end to end against the in-process Easemob emulator ({n:,} recalls, 1,000 req/s)")
    print(f"  batch_recall (30 a call): median {batched:.2f} s = {n / batched:,.0f} items/s")
    print(f"  msg_recall (1 a call):    median {single:.2f} s = {n / single:,.0f} items/s")
    print(f"  batching speed-up: {single / batched:.1f}x")


def main() -> None:
    configure_logging(fmt="console", level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        bench_reader(tmp)
        bench_plan_memory(tmp)
        bench_engine(tmp)


if __name__ == "__main__":
    main()
