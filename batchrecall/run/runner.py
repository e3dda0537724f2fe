"""Running a job end to end: HTTP client, adapters, engine, results file and signals."""

from __future__ import annotations

import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx

from batchrecall import catalog
from batchrecall.config import Config
from batchrecall.errors import ErrorCode, UsageError
from batchrecall.intake.partition import Partition
from batchrecall.intake.plan import Plan, build_plan
from batchrecall.models import InvalidRow, Item, JobRef, LaneKey
from batchrecall.results.recorder import ProgressSink
from batchrecall.results.store import (
    Format,
    ResultsLock,
    ResultsWriter,
    ResumeIndex,
    default_results_path,
    format_of,
    is_done,
    load_resume_index,
    sniff_format,
)
from batchrecall.results.summary import Summary
from batchrecall.run.clock import Clock, MonotonicClock
from batchrecall.run.engine import Engine
from batchrecall.run.limits import lane_identity, open_permit_store
from batchrecall.run.transport import open_client
from batchrecall.vendors import Adapter, adapter_class, make_adapter


@dataclass(kw_only=True)
class RunRequest:
    jobs: Sequence[JobRef]
    config: Config
    out: Path
    fmt: Format
    resume: ResumeIndex | None = None
    transport: httpx.AsyncBaseTransport | None = None
    progress: ProgressSink = field(default_factory=ProgressSink)
    clock: Clock = field(default_factory=MonotonicClock)
    handle_signals: bool = False
    lock: ResultsLock | None = None
    """The results file's lock, when the caller took it before planning."""
    run_id: str | None = None
    """The run's id (call ids start with it); a new one if None."""
    select: Callable[[Item | InvalidRow], bool] | None = None
    """Only these rows belong to this run (a shard of the job); None: all of them."""
    partition: Partition | None = None
    """What the plan's pass left of the jobs (`plan_job(..., partition=)`): the run sends from
    it instead of reading the jobs again (`resume` and `select` were applied by that pass)."""


def new_run_id() -> str:
    return "r" + uuid.uuid4().hex[:8]


def plan_job(
    jobs: Sequence[JobRef],
    *,
    config: Config | None,
    resume: ResumeIndex | None = None,
    keep: Callable[[Item | InvalidRow], bool] | None = None,
    partition: Partition | None = None,
    observe: Callable[[Item], None] | None = None,
    now: float | None = None,
) -> Plan:
    """The plan of a run of these jobs under this config (default rates and limits if none).

    The job files are read once; with a `partition` that pass also leaves there what the run
    sends (give it to `RunRequest.partition`), and `observe` sees every valid item.
    """

    def limit(item: Item) -> int:
        spec = catalog.get(item.vendor)
        return spec.items_per_call(item.op, config.lane(item.lane).setting if config else None)

    def rate(key: LaneKey) -> float:
        return config.lane(key).rate if config else catalog.get(key.vendor).default_rate

    planned_at_ms = (time.time() if now is None else now) * 1000

    def past_window(item: Item) -> bool:
        configured = config.lane(item.lane).recall_window_s if config else None
        window = catalog.get(item.vendor).recall_window_s(item.op, item.options, configured)
        sent = item.sent_at
        return window is not None and sent is not None and planned_at_ms - sent > window * 1000

    return build_plan(
        jobs,
        limit=limit,
        rate=rate,
        settled=_settled_by(resume) if resume is not None else None,
        keep=keep,
        partition=partition,
        observe=observe,
        past_window=past_window,
    )


def _settled_by(resume: ResumeIndex) -> Callable[[str], str | None]:
    def settled(item_key: str) -> str | None:
        outcome = resume.outcome(item_key)
        return outcome[0] if outcome is not None and is_done(*outcome) else None

    return settled


async def run_request(request: RunRequest) -> Summary:
    """Send every item of the jobs and write one result row per item to `request.out`, holding
    the results file's lock for the whole run (`request.lock` if the caller took it already)."""
    lock = request.lock or ResultsLock(request.out)
    if request.lock is None:
        lock.acquire()
    try:
        return await _run_locked(request)
    finally:
        if request.lock is None:
            lock.release()


async def _run_locked(request: RunRequest) -> Summary:
    config = request.config
    settings = config.run
    # A plugin's adapter that cannot be imported stops the run before a row is written.
    for vendor in sorted({key.vendor for key in config.lanes}):
        adapter_class(vendor)
    writer = ResultsWriter(request.out, request.fmt, append=request.resume is not None)
    # Shared windows only where other processes take part; alone, each lane's own limiter holds.
    shared = (
        open_permit_store(config.limits, clock=request.clock)
        if config.limits.backend == "redis"
        else None
    )
    try:
        async with open_client(settings, request.transport) as client:

            def adapter_for(key: LaneKey) -> Adapter:
                return make_adapter(config.lane(key), client)

            engine = Engine(
                run_settings=settings,
                writer=writer,
                adapter_for=adapter_for,
                rates=lambda key: config.lane(key).rate,
                run_id=request.run_id or new_run_id(),
                resume=request.resume,
                clock=request.clock,
                progress=request.progress,
                select=request.select,
                shared=shared,
                identity=lambda key: lane_identity(config.lane(key)),
            )
            source = request.partition if request.partition is not None else request.jobs
            if not request.handle_signals:
                return await engine.run(source)
            return await _run_with_signals(engine, source)
    finally:
        writer.close()
        if shared is not None:
            await shared.aclose()


def run_job(
    jobs: Sequence[str | Path | JobRef],
    config: Config,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    fmt: Format | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: ProgressSink | None = None,
) -> Summary:
    """Run jobs from Python: the same run as `batchrecall run --yes`, returning its summary.

    `out` defaults to `<first job's stem>.results.jsonl` beside it. An existing results file is
    continued with `resume=True` or replaced with `overwrite=True`; otherwise UsageError.
    """
    refs = [
        job if isinstance(job, JobRef) else JobRef(path=Path(job), name=str(job)) for job in jobs
    ]
    if not refs:
        raise UsageError("no job files given")
    chosen: Format = fmt or "jsonl"
    path = Path(out) if out is not None else default_results_path(refs[0].path, chosen)
    chosen = format_of(path, fmt)
    with ResultsLock(path) as lock:
        exists = path.exists() and path.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise UsageError(f"results file {path} exists: pass resume=True or overwrite=True")
        index = load_resume_index(path) if resume and exists else None
        if index is not None:
            chosen = sniff_format(path)
        request = RunRequest(
            jobs=refs,
            config=config,
            out=path,
            fmt=chosen,
            resume=index if index is not None else (ResumeIndex() if resume else None),
            transport=transport,
            progress=progress or ProgressSink(),
            lock=lock,
        )
        try:
            return anyio.run(run_request, request)
        finally:
            if request.resume is not None:
                request.resume.close()


async def _run_with_signals(engine: Engine, jobs: Sequence[JobRef] | Partition) -> Summary:
    """First SIGINT/SIGTERM: stop sending and reading, let calls in flight finish, write rows for
    what the lanes hold (the rest of the job is left to do); second: abandon the calls in flight
    (their items are `unknown`) and end at once."""
    summary: Summary | None = None
    async with anyio.create_task_group() as tg:
        run_scope = anyio.CancelScope()

        async def watch() -> None:
            signals_seen = 0
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    signals_seen += 1
                    if signals_seen == 1:  # the progress display says what happens now
                        engine.request_stop(ErrorCode.INTERRUPTED)
                    else:
                        _say(f"abandoning {engine.in_flight} calls in flight")
                        engine.stop_reason = ErrorCode.INTERRUPTED
                        run_scope.cancel()

        tg.start_soon(watch)
        with run_scope:
            summary = await engine.run(jobs)
        tg.cancel_scope.cancel()
    if summary is None:  # cancelled: the engine still counted every row it wrote
        summary = engine.summary
    return summary


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
