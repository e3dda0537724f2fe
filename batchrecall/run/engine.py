"""The run: job rows -> planner -> lanes -> adapters -> one result row per item.

Every lane reads the job files on its own, so a slow lane never holds up a fast one while memory
stays flat; a scout pass writes the invalid rows and opens each lane when it first sees it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import anyio.lowlevel
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from batchrecall.config import RunSettings
from batchrecall.errors import (
    ErrorCode,
)
from batchrecall.intake.planner import Planner
from batchrecall.intake.reader import read_job
from batchrecall.models import Call, InvalidRow, Item, JobRef, LaneKey
from batchrecall.results.recorder import ProgressSink, Recorder
from batchrecall.results.store import ResultsWriter, ResumeIndex, is_done
from batchrecall.results.summary import Summary
from batchrecall.run.clock import Clock, MonotonicClock
from batchrecall.run.lanes import Lane, Work
from batchrecall.run.retry import RetryPolicy
from batchrecall.run.sender import CallSender
from batchrecall.vendors.base import Adapter

log = structlog.get_logger("batchrecall")

Row = Item | InvalidRow
_T = TypeVar("_T")
_CHECKPOINT_EVERY = 256

__all__ = ["Engine", "JobRef", "ProgressSink"]


@dataclass
class _LaneFeed:
    """One lane's own pass over the jobs, and the queues between it and the lane's workers."""

    rows: Iterator[Row]
    planner: Planner
    inbox: MemoryObjectSendStream[Call]
    queued_calls: MemoryObjectReceiveStream[Call]
    queued_work: MemoryObjectReceiveStream[Work]
    in_hand: Call | None = None


@dataclass
class Engine:
    run_settings: RunSettings
    writer: ResultsWriter
    adapter_for: Callable[[LaneKey], Adapter]
    rates: Callable[[LaneKey], float]
    run_id: str
    resume: ResumeIndex | None = None
    clock: Clock = field(default_factory=MonotonicClock)
    rng: random.Random = field(default_factory=random.Random)
    progress: ProgressSink = field(default_factory=ProgressSink)
    summary: Summary = field(default_factory=Summary)
    stop_reason: ErrorCode | None = None

    def __post_init__(self) -> None:
        self.policy = RetryPolicy(max_attempts=self.run_settings.max_attempts)
        self.lanes: dict[LaneKey, Lane] = {}
        self._feeds: dict[LaneKey, _LaneFeed] = {}
        # Planners of lanes never opened (a run stopped first) still tell duplicates apart.
        self._idle_planners: dict[LaneKey, Planner] = {}
        self._call_numbers = itertools.count(1)
        self._slots = anyio.CapacityLimiter(self.run_settings.concurrency)
        self._jobs: Sequence[JobRef] = ()
        self._scout: Iterator[Row] = iter(())

    # -- public ------------------------------------------------------------------------------

    def request_stop(self, reason: ErrorCode = ErrorCode.INTERRUPTED) -> None:
        """No new call is sent from now on; calls in flight finish."""
        if self.stop_reason is None:
            self.stop_reason = reason
            log.warning("batchrecall.stopping", reason=str(reason))

    async def run(self, jobs: Sequence[JobRef]) -> Summary:
        self.summary.start(self.clock.now())
        log.info(
            "batchrecall.run_started",
            run_id=self.run_id,
            jobs=[j.name for j in jobs],
            resume=self.resume is not None,
        )
        self._jobs = jobs
        self._scout = self._read(jobs)
        self.record = Recorder(
            writer=self.writer,
            summary=self.summary,
            run_settings=self.run_settings,
            on_halt=lambda: self.request_stop(ErrorCode.HALTED),
            progress=self.progress,
        )
        self.sender = CallSender(
            run=self,
            record=self.record,
            policy=self.policy,
            slots=self._slots,
            clock=self.clock,
            rng=self.rng,
            progress=self.progress,
        )
        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._sync_results)
                async with anyio.create_task_group() as tg:
                    self._task_group = tg
                    await self._scout_rows()
                outer.cancel_scope.cancel()
        finally:
            # Plain (synchronous) code: it runs to the end even when the run was cancelled.
            self._report_unsent()
            self.writer.sync()
            self.summary.stop_reason = self.stop_reason or ""
            self.summary.finish(self.clock.now(), self.lanes)
            log.info(
                "batchrecall.run_finished",
                run_id=self.run_id,
                statuses={str(k): n for k, n in self.summary.statuses.items()},
                stop_reason=self.summary.stop_reason,
                duration_s=round(self.summary.duration_s, 3),
            )
        return self.summary

    async def _sync_results(self) -> None:
        """fsync the results at least once a second while rows come (real time, not the
        injected clock: durability is about the machine's seconds)."""
        while True:
            await anyio.sleep(1.0)
            self.writer.sync_if_dirty()

    # -- reading -----------------------------------------------------------------------------

    @staticmethod
    def _read(jobs: Sequence[JobRef]) -> Iterator[Row]:
        for job in jobs:
            yield from read_job(job.path, job_name=job.name)

    def _done_before(self, row: Row) -> bool:
        return self.resume is not None and self.resume.is_done(row.item_key)

    async def _scout_rows(self) -> None:
        """Invalid rows and items settled by an earlier run are handled here; items are not."""
        for count, row in enumerate(self._scout):
            if count % _CHECKPOINT_EVERY == 0:
                await anyio.lowlevel.checkpoint()
            self._scout_one(row)

    def _scout_one(self, row: Row) -> None:
        outcome = self.resume.outcome(row.item_key) if self.resume is not None else None
        if outcome is not None and is_done(*outcome):
            self.summary.kept(*outcome)
        elif isinstance(row, InvalidRow):
            self.record.invalid(row)
        elif row.lane not in self._feeds:
            if self.stop_reason is None:
                self._open_lane(row.lane)
            else:
                self._take_unopened(row)

    def _take_unopened(self, item: Item) -> None:
        """An item of a lane that never opened because the run stopped first."""
        planner = self._idle_planners.get(item.lane)
        if planner is None:
            planner = self._idle_planners[item.lane] = self._planner(item.lane, lambda _: 1)
        if planner.is_duplicate(item):
            self.record.duplicate(item)
        else:
            self.record.stopped([item], self.stop_reason)

    def _planner(self, key: LaneKey, limit: Callable[[Item], int]) -> Planner:
        return Planner(limit=limit, run_id=self.run_id, numbers=self._call_numbers)

    def _open_lane(self, key: LaneKey) -> None:
        lane = Lane(
            key=key,
            adapter=self.adapter_for(key),
            clock=self.clock,
            rate=self.rates(key),
            should_stop=lambda: self.stop_reason is not None,
        )
        self.lanes[key] = lane
        log.info(
            "batchrecall.lane_opened",
            lane=str(key),
            rate=lane.rate,
            base_url=lane.adapter.settings.base_url,
        )
        # Bounded streams give backpressure: a lane's reader waits while its lane is busy.
        size = max(4, self.run_settings.concurrency)
        inbox_send, inbox_receive = anyio.create_memory_object_stream[Call](size)
        work_send, work_receive = anyio.create_memory_object_stream[Work](size)
        feed = _LaneFeed(
            rows=self._read(self._jobs),
            planner=self._planner(key, lambda item: lane.adapter.max_items(item.op)),
            inbox=inbox_send,
            queued_calls=inbox_receive.clone(),
            queued_work=work_receive.clone(),
        )
        self._feeds[key] = feed
        tg = self._task_group
        tg.start_soon(self._feed_lane, lane, feed)
        tg.start_soon(lane.dispatch, inbox_receive, work_send, tg)
        for _ in range(self.run_settings.concurrency):
            tg.start_soon(self._worker, lane, work_receive.clone())
        work_receive.close()

    async def _feed_lane(self, lane: Lane, feed: _LaneFeed) -> None:
        async with feed.inbox:
            for count, row in enumerate(feed.rows):
                if count % _CHECKPOINT_EVERY == 0:
                    await anyio.lowlevel.checkpoint()
                for call in self._take(lane, feed.planner, row):
                    await self._hand_over(feed, call)
            for call in feed.planner.flush():
                await self._hand_over(feed, call)

    @staticmethod
    async def _hand_over(feed: _LaneFeed, call: Call) -> None:
        feed.in_hand = call  # a cancelled hand-over must still be reported
        await feed.inbox.send(call)
        feed.in_hand = None

    def _take(self, lane: Lane, planner: Planner, row: Row) -> Iterator[Call]:
        """This lane's items: rows for what will not be sent, full calls for what will."""
        if not isinstance(row, Item) or row.lane != lane.key or self._done_before(row):
            return
        if planner.is_duplicate(row):
            self.record.duplicate(row)
        elif self.stop_reason is not None:
            self.record.stopped([row], self.stop_reason)
        elif lane.fatal is not None:
            self.record.lane_stopped([row], lane.key, str(lane.fatal.code))
        else:
            yield from planner.add(row)

    # -- workers -----------------------------------------------------------------------------

    async def _worker(self, lane: Lane, work: MemoryObjectReceiveStream[Work]) -> None:
        async with work:
            async for job in work:
                try:
                    await self.sender.process(lane, job.call)
                finally:
                    if job.done is not None:
                        job.done.set()

    # -- the end -----------------------------------------------------------------------------

    def _report_unsent(self) -> None:
        """After the lanes closed: whatever was never sent still gets its row."""
        reason = self.stop_reason or ErrorCode.INTERRUPTED
        for key, feed in self._feeds.items():
            lane = self.lanes[key]
            calls = [feed.in_hand] if feed.in_hand else []
            calls += _drain(feed.queued_calls)
            calls += [work.call for work in _drain(feed.queued_work)]
            calls += lane.unsent_calls()
            calls += feed.planner.flush()
            if calls and self.stop_reason is None and lane.fatal is None:
                self.stop_reason = reason
            for call in calls:
                self.sender.unsent(call.items, lane, None, "")
            for row in feed.rows:
                if lane.fatal is None:
                    self.stop_reason = self.stop_reason or reason
                for _ in self._take(lane, feed.planner, row):
                    pass  # nothing is sent after a stop: _take writes the row itself
            feed.planner.close()
        for planner in self._idle_planners.values():
            planner.close()
        for row in self._scout:
            self.stop_reason = self.stop_reason or reason
            self._scout_one(row)


def _drain(stream: MemoryObjectReceiveStream[_T]) -> list[_T]:
    drained: list[_T] = []
    while True:
        try:
            drained.append(stream.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return drained
