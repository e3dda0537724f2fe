"""Running a job end to end: HTTP client, adapters, engine, results file and signals."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx

from batchrecall.config import DEFAULT_RATES, Config
from batchrecall.errors import ErrorCode
from batchrecall.intake.plan import Plan, build_plan
from batchrecall.models import Item, JobRef, LaneKey
from batchrecall.results.recorder import ProgressSink
from batchrecall.results.store import Format, ResultsWriter, ResumeIndex
from batchrecall.results.summary import Summary
from batchrecall.run.clock import Clock, MonotonicClock
from batchrecall.run.engine import Engine
from batchrecall.run.transport import open_client
from batchrecall.vendors import ADAPTERS, Adapter, make_adapter


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


def new_run_id() -> str:
    return "r" + uuid.uuid4().hex[:8]


def plan_job(
    jobs: Sequence[JobRef], *, config: Config | None, resume: ResumeIndex | None = None
) -> Plan:
    """The plan of a run of these jobs under this config (default rates and limits if none)."""

    def limit(item: Item) -> int:
        settings = config.lane(item.lane) if config else None
        return ADAPTERS[item.vendor].planned_items(item.op, settings)

    def rate(key: LaneKey) -> float:
        return config.lane(key).rate if config else DEFAULT_RATES[key.vendor]

    return build_plan(
        jobs, limit=limit, rate=rate, is_done=resume.is_done if resume is not None else None
    )


async def run_job(request: RunRequest) -> Summary:
    """Send every item of the jobs and write one result row per item to `request.out`."""
    config = request.config
    settings = config.run
    writer = ResultsWriter(request.out, request.fmt, append=request.resume is not None)
    try:
        async with open_client(settings, request.transport) as client:

            def adapter_for(key: LaneKey) -> Adapter:
                return make_adapter(config.lane(key), client)

            engine = Engine(
                run_settings=settings,
                writer=writer,
                adapter_for=adapter_for,
                rates=lambda key: config.lane(key).rate,
                run_id=new_run_id(),
                resume=request.resume,
                clock=request.clock,
                progress=request.progress,
            )
            if not request.handle_signals:
                return await engine.run(request.jobs)
            return await _run_with_signals(engine, request.jobs)
    finally:
        writer.close()


async def _run_with_signals(engine: Engine, jobs: Sequence[JobRef]) -> Summary:
    """First SIGINT/SIGTERM: stop sending and drain; second: cancel the calls in flight."""
    summary: Summary | None = None
    async with anyio.create_task_group() as tg:
        run_scope = anyio.CancelScope()

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    if engine.stop_reason is None:
                        engine.request_stop(ErrorCode.INTERRUPTED)
                    else:
                        engine.stop_reason = ErrorCode.INTERRUPTED
                        run_scope.cancel()

        tg.start_soon(watch)
        with run_scope:
            summary = await engine.run(jobs)
        tg.cancel_scope.cancel()
    if summary is None:  # cancelled: the engine still counted every row it wrote
        summary = engine.summary
    return summary
