"""The run's scheduler: it owns every item from the moment it is read until its row is written.

One reader goes through the job files once. Each row becomes a result row at once (invalid,
duplicate, settled by an earlier run, or not to be sent because the run or its lane stopped) or
an item for its lane's planner, whose full calls join the lane's backlog (spilled to disk when a
slow lane falls far behind, so the reader never waits on one lane). One dispatcher per lane takes
the lane's next ready work, waits for the lane's permit, then for a run-wide concurrency slot,
and sends it; what an answer leaves behind (a retry, a split's parts) goes back to the lane as
new work. Stopping is a state: dispatchers write rows for what their lanes hold, the reader
writes rows for the rest of the job, calls in flight finish.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import structlog

from batchrecall.config import RunSettings
from batchrecall.errors import ErrorCode, LimiterUnavailableError
from batchrecall.intake.planner import Planner
from batchrecall.intake.reader import read_job
from batchrecall.keystore import KeyStore
from batchrecall.models import Call, InvalidRow, Item, JobRef, LaneKey
from batchrecall.results.recorder import LaneState, ProgressSink, Recorder
from batchrecall.results.store import ResultsWriter, ResumeIndex, is_done
from batchrecall.results.summary import Summary
from batchrecall.run.clock import Clock, MonotonicClock
from batchrecall.run.lanes import Lane, Work
from batchrecall.run.limits import PermitStore
from batchrecall.run.retry import RetryPolicy
from batchrecall.run.sender import CallSender, FollowUp, watch_exchanges
from batchrecall.vendors.base import Adapter

log = structlog.get_logger("batchrecall")

Row = Item | InvalidRow
# The reader gives the event loop back this often: sends due while it reads leave late, and
# lateness past one call's spacing is lost rate. Easemob at 200 calls/s (30 items a call) on a
# loaded 2-core machine: 256 rows a stretch 0.87-0.93 of its rate, 32 rows 0.87, 8 rows 0.93-0.95
# (a clock-based slice of 2 ms did no better than 32 rows).
_CHECKPOINT_EVERY = 8
# Every this many rows the reader writes the rows read after a stop (one write and flush) and
# asks whether some lane still wants more.
_TAIL_BATCH = 256
_HUNGRY_BELOW = 1_000
"""A lane whose backlog holds fewer items than this wants the reader to go on."""
_PLANNER_BUFFER = 2_000
_SYNC_EVERY_S = 1.0

__all__ = ["Engine", "ProgressSink"]


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
    select: Callable[[Item | InvalidRow], bool] | None = None
    """Only these rows belong to this run (a shard of the job); None: all of them."""
    shared: PermitStore | None = None
    """Windows shared with other processes (Redis); None: this process's own limits only."""
    identity: Callable[[LaneKey], str] = str
    """A lane's vendor app identity in the shared store."""

    def __post_init__(self) -> None:
        self.policy = RetryPolicy(max_attempts=self.run_settings.max_attempts)
        self.lanes: dict[LaneKey, Lane] = {}
        self._planners: dict[LaneKey, Planner] = {}
        self._states: dict[LaneKey, str] = {}
        self._seen = KeyStore()
        self._call_numbers = itertools.count(1)
        self._slots = anyio.CapacityLimiter(self.run_settings.concurrency)
        self._reader_wake = anyio.Event()
        self._tail: list[Item] = []

    # -- public ------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return sum(lane.in_flight for lane in self.lanes.values())

    def request_stop(self, reason: ErrorCode = ErrorCode.INTERRUPTED) -> None:
        """No new call is sent from now on; calls in flight finish; the rest gets its rows."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        in_flight = self.in_flight
        log.warning("batchrecall.stopping", reason=str(reason), in_flight=in_flight)
        if reason is ErrorCode.INTERRUPTED:  # the operator asked: say what happens now
            self.progress.stopping(in_flight)
        for lane in self.lanes.values():
            lane.halt()
        self._reader_wake.set()

    async def run(self, jobs: Sequence[JobRef]) -> Summary:
        self.summary.start(self.clock.now())
        self.record = Recorder(
            writer=self.writer,
            summary=self.summary,
            run_settings=self.run_settings,
            on_halt=lambda: self.request_stop(ErrorCode.HALTED),
            progress=self.progress,
        )
        self.sender = CallSender(
            record=self.record,
            policy=self.policy,
            clock=self.clock,
            rng=self.rng,
            progress=self.progress,
        )

        log.info(
            "batchrecall.run_started",
            run_id=self.run_id,
            jobs=[j.name for j in jobs],
            resume=self.resume is not None,
        )
        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._sync_results)
                async with anyio.create_task_group() as tg:
                    self._task_group = tg
                    await self._read(jobs)
                outer.cancel_scope.cancel()
        finally:
            # Plain code: it runs to its end even when the run was cancelled.
            self.writer.sync()
            for lane in self.lanes.values():
                lane.close()
            for planner in self._planners.values():
                planner.close()
            self._seen.close()
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
            await anyio.sleep(_SYNC_EVERY_S)
            await self.writer.sync_in_thread()

    # -- reading -----------------------------------------------------------------------------

    async def _read(self, jobs: Sequence[JobRef]) -> None:
        count = 0
        for job in jobs:
            for row in read_job(job.path, job_name=job.name, encoding=job.encoding):
                count += 1
                if count % _TAIL_BATCH == 0:
                    self._write_tail()
                    await anyio.lowlevel.checkpoint()
                    await self._wait_for_a_hungry_lane()
                elif count % _CHECKPOINT_EVERY == 0:
                    await anyio.lowlevel.checkpoint()
                self._take(row)
        self._write_tail()
        for key, planner in self._planners.items():
            for call in planner.flush():
                self._enqueue(self.lanes[key], call)
        for lane in self.lanes.values():
            lane.input_done = True
            lane.notify()

    def _take(self, row: Row) -> None:
        if self.select is not None and not self.select(row):
            return  # another shard's
        outcome = self.resume.outcome(row.item_key) if self.resume is not None else None
        if outcome is not None and is_done(*outcome):
            self.summary.kept(*outcome, row.item_key)
        elif isinstance(row, InvalidRow):
            self.record.invalid(row)
        elif not self._seen.add_new(row.item_key):
            self.record.duplicate(row)
        elif self.stop_reason is not None:
            self._tail.append(row)
        else:
            lane = self.lanes.get(row.lane) or self._open_lane(row.lane)
            if lane.fatal is not None:
                self.record.lane_stopped([row], lane.key, str(lane.fatal.code))
                return
            for call in self._planners[lane.key].add(row):
                self._enqueue(lane, call)

    def _write_tail(self) -> None:
        """Rows for items read after the run stopped, a batch at a time (one write and flush)."""
        if self._tail:
            self.record.stopped(self._tail, self.stop_reason)
            self._tail = []

    def _enqueue(self, lane: Lane, call: Call) -> None:
        if self.stop_reason is not None:
            self.record.stopped(call.items, self.stop_reason)
        elif lane.fatal is not None:
            self.record.lane_stopped(call.items, lane.key, str(lane.fatal.code))
        else:
            lane.backlog.push(call)
            lane.notify()

    async def _wait_for_a_hungry_lane(self) -> None:
        """Backpressure: read on only while some lane wants more (the others spill)."""
        while self.stop_reason is None and not self._some_lane_hungry():
            self._reader_wake = anyio.Event()
            if self._some_lane_hungry():
                return
            await self._reader_wake.wait()

    def _some_lane_hungry(self) -> bool:
        open_lanes = [lane for lane in self.lanes.values() if lane.fatal is None]
        return not open_lanes or any(len(lane.backlog) < _HUNGRY_BELOW for lane in open_lanes)

    def _open_lane(self, key: LaneKey) -> Lane:
        adapter = self.adapter_for(key)
        watch_exchanges(adapter.client)
        lane = Lane(
            key=key,
            adapter=adapter,
            clock=self.clock,
            rate=self.rates(key),
            shared=self.shared,
            identity=self.identity(key) if self.shared is not None else "",
        )
        self.lanes[key] = lane
        self._planners[key] = Planner(
            limit=lambda item: adapter.max_items(item.op),
            run_id=self.run_id,
            numbers=self._call_numbers,
            max_buffered=_PLANNER_BUFFER,
        )
        log.info(
            "batchrecall.lane_opened",
            lane=str(key),
            rate=lane.rate,
            base_url=adapter.settings.base_url,
        )
        self._state(lane, LaneState(kind="sending"))
        self._task_group.start_soon(self._dispatch, lane)
        return lane

    # -- sending -----------------------------------------------------------------------------

    async def _dispatch(self, lane: Lane) -> None:
        """Send the lane's work as its permits come; when it stops, write rows for the rest."""
        while self.stop_reason is None and lane.fatal is None:
            wake = lane.new_wake()
            now = self.clock.now()
            work, ready_at = lane.next_work(now)
            if len(lane.backlog) < _HUNGRY_BELOW:
                self._reader_wake.set()
            if work is None:
                if lane.idle:
                    self._state(lane, LaneState(kind="done"))
                    return
                if lane.parked_count and not lane.in_flight:
                    self._state(lane, LaneState(kind="pacing"))
                await self.clock.sleep_until(ready_at, wake)
                continue
            lane.in_hand = work
            await self._launch(lane, work)
        await self._write_held(lane)

    async def _launch(self, lane: Lane, work: Work) -> None:
        """Permit first, then a run-wide slot, then the request leaves in its own task."""
        failed = await self.sender.prepare(lane, work)
        if failed is not None:
            lane.in_hand = None
            self._follow_up(lane, work, failed)
            return
        while not lane.halted.is_set():
            now = self.clock.now()
            delay = lane.permit_delay(now)
            if delay > 0:
                await self.clock.sleep_until(now + delay, lane.halted)
                continue
            if not await self._take_slot(lane, work):
                return  # stopped meanwhile: the work stays in hand and gets its row
            now = self.clock.now()
            if lane.permit_delay(now) > 0:  # a throttle answer came while we waited
                self._slots.release_on_behalf_of(work)
                continue
            try:
                shared_wait = await lane.shared_permit(work)
            except LimiterUnavailableError as exc:
                self._slots.release_on_behalf_of(work)
                self.sender.lane_stopped_by(lane, exc)
                return  # the work stays in hand: skipped / lane-stopped
            if shared_wait > 0:  # another process took the window's permits
                self._slots.release_on_behalf_of(work)
                if lane.in_hand is not work:
                    return  # parked behind its user's window: the lane goes on
                await self.clock.sleep_until(self.clock.now() + shared_wait, lane.halted)
                continue
            now = self.clock.now()
            lane.record_send(work, now)
            lane.in_hand = None
            lane.in_flight += 1
            self._state(lane, LaneState(kind="sending"))
            self.progress.call_sent(lane.key)
            self._task_group.start_soon(self._send, lane, work)
            return

    async def _take_slot(self, lane: Lane, work: Work) -> bool:
        with anyio.CancelScope() as scope:
            lane.slot_wait = scope
            if lane.halted.is_set():
                scope.cancel()
            await self._slots.acquire_on_behalf_of(work)
        lane.slot_wait = None
        return not scope.cancelled_caught

    async def _send(self, lane: Lane, work: Work) -> None:
        try:
            follow_up = await self.sender.send(lane, work)
        finally:
            self._slots.release_on_behalf_of(work)
            lane.in_flight -= 1
            lane.notify()
        self._follow_up(lane, work, follow_up)
        await self.sender.share_pause(lane)

    def _follow_up(self, lane: Lane, work: Work, follow_up: FollowUp) -> None:
        """An attempt's leftovers go back to the lane, or get their rows if it stopped."""
        sending = self.stop_reason is None and lane.fatal is None
        if follow_up.retry is not None and sending:
            lane.add_retry(follow_up.retry)
        else:
            if follow_up.retry is not None:
                self.sender.unsent(lane, follow_up.retry, self.stop_reason)
            lane.release_key(work)
        for part in follow_up.parts:
            if sending:
                lane.add_front(part)
            else:
                self.sender.unsent(lane, part, self.stop_reason)

    async def _write_held(self, lane: Lane) -> None:
        """Rows for everything the lane still holds (in hand, queued, parked, waiting to retry),
        at full speed; a second interrupt may cut this short (the rest is then left to do)."""
        for count, work in enumerate(lane.take_everything(), start=1):
            self.sender.unsent(lane, work, self.stop_reason)
            if count % _TAIL_BATCH == 0:
                await anyio.lowlevel.checkpoint()

    def _state(self, lane: Lane, state: LaneState) -> None:
        if self._states.get(lane.key) != state.kind:
            self._states[lane.key] = state.kind
            self.progress.lane_state(lane.key, state)
