"""Batching: Easemob `batch_recall` (30 a call) against one `msg_recall` a message, in process."""

from __future__ import annotations

import time
import tomllib
from dataclasses import replace
from pathlib import Path

import anyio
import httpx

from batchrecall.config import RunSettings, parse_config
from batchrecall.emulators.common import EmulatorSettings
from batchrecall.emulators.seeding import seed_jobs
from batchrecall.emulators.server import EmulatorSet
from batchrecall.models import JobRef, LaneKey, Vendor
from batchrecall.run.runner import RunRequest, run_request


def run_in_process(job: Path, *, batch: bool, rate: float) -> float:
    """Seconds to recall every message of `job` against the in-process Easemob emulator."""
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
