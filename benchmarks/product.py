"""The product end to end: `run_request` over real HTTP against the emulators in another process."""

from __future__ import annotations

import gc
import resource
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio

from batchrecall.config import Config, RunSettings, parse_config
from batchrecall.models import JobRef, LaneKey, Vendor
from batchrecall.results.summary import Summary
from batchrecall.run.runner import RunRequest, run_request
from benchmarks.vendor_server import Served

# The requests a vendor's rate limit counts (Easemob's token requests have their own limit).
_COUNTED: dict[str, Callable[[str], bool]] = {
    "easemob": lambda path: "/messages/" in path,
    "goeasy": lambda path: "/recall" in path,
    "yunxin": lambda path: True,
}


@dataclass(frozen=True)
class RunFigures:
    items: int
    seconds: float
    cpu_s: float
    requests: int
    achieved: float
    """Requests a second the vendor received, first to last."""
    max_in_window: int
    """The most requests in any 1-second window, as the vendor saw them arrive."""
    throttle_answers: int
    statuses: dict[str, int]

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds

    @property
    def cpu_ms_per_call(self) -> float:
        return self.cpu_s / max(1, self.requests) * 1000


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _is_throttle(entry: dict[str, Any]) -> bool:
    return bool(entry["status"] == 429 or entry["code"] == 416)


def max_in_window(times: list[float], width: float = 1.0) -> int:
    ordered = sorted(times)
    return max((bisect_right(ordered, t + width) - i for i, t in enumerate(ordered)), default=0)


def _timed_run(job: Path, config: Config) -> tuple[Summary, float, float]:
    """`run_request` on `job` (results beside it, overwritten): the summary, wall seconds and
    the process's CPU seconds."""
    out = job.with_suffix(".results.jsonl")
    out.unlink(missing_ok=True)
    request = RunRequest(
        jobs=[JobRef(path=job, name=str(job))], config=config, out=out, fmt="jsonl"
    )
    gc.freeze()  # as `batchrecall run` does before it starts
    cpu, start = _cpu_s(), time.perf_counter()
    summary = anyio.run(run_request, request)
    return summary, time.perf_counter() - start, _cpu_s() - cpu


def run_over_http(
    served: Served,
    job: Path,
    *,
    vendor: str,
    rate: float,
    concurrency: int = 64,
) -> RunFigures:
    """Run `job` through `run_request` against `served`, the lane at `rate`; what the vendor saw."""
    key = LaneKey(vendor=Vendor(vendor), app="default")
    config = served.config().with_rate(key, rate)
    config = replace(config, run=RunSettings(concurrency=concurrency))
    already = len(served.requests())
    summary, seconds, cpu_s = _timed_run(job, config)
    counted = _COUNTED[vendor]
    log = [e for e in served.requests()[already:] if e["vendor"] == vendor and counted(e["path"])]
    times = sorted(e["time"] for e in log)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return RunFigures(
        items=summary.items,
        seconds=seconds,
        cpu_s=cpu_s,
        requests=len(log),
        achieved=(len(times) - 1) / span if span > 0 else 0.0,
        max_in_window=max_in_window(times),
        throttle_answers=sum(1 for e in log if _is_throttle(e)),
        statuses={str(k): v for k, v in summary.statuses.items()},
    )


def run_against(base_url: str, job: Path, concurrency: int) -> RunFigures:
    """Run a Yunxin `job` against a server that answers every request `{"code":200}` (no rate
    limit): the product's own speed and CPU, with no emulator's cost in the way."""
    raw = {
        "yunxin": {
            "default": {"base_url": base_url, "app_key": "k", "app_secret": "s", "rate": 1e6}
        }
    }
    config = replace(
        parse_config(raw, environ={}, source="bench"), run=RunSettings(concurrency=concurrency)
    )
    summary, seconds, cpu_s = _timed_run(job, config)
    return RunFigures(
        items=summary.items,
        seconds=seconds,
        cpu_s=cpu_s,
        requests=summary.items,
        achieved=summary.items / seconds,
        max_in_window=0,
        throttle_answers=0,
        statuses={str(k): v for k, v in summary.statuses.items()},
    )
