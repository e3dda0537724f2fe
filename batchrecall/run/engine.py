"""The run's scheduler: it owns every item from the moment its lane reads it until its row is
written.

The plan's pass read the job once and left each lane's items in a file of their own, and the rows
written without sending (invalid rows, repeats) in another (`intake.partition`). Every lane starts
at once: one dispatcher per lane reads the lane's file through its planner as it needs work,
waits for the lane's permit, then for a run-wide concurrency slot, and sends; what an answer
leaves behind (a retry, a split's parts) goes back to the lane as new work. Stopping is a state:
calls in flight finish, and each dispatcher writes rows for what its lane holds: on an
interrupt only what it read (the rest of its file is left to do, without a row), on a halt or a
lane stop everything.
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
from batchrecall.intake.partition import Partition
from batchrecall.intake.plan import build_plan
from batchrecall.intake.planner import Planner
from batchrecall.models import InvalidRow, Item, JobRef, LaneKey
from batchrecall.results.recorder import LaneState, ProgressSink, Recorder
from batchrecall.results.store import ResultsWriter, ResumeIndex, is_done
from batchrecall.results.summary import Summary
from batchrecall.run.backlog import Backlog
from batchrecall.run.clock import Clock, MonotonicClock
from batchrecall.run.lanes import Lane, Work
from batchrecall.run.limits import PermitStore
from batchrecall.run.retry import RetryPolicy
from batchrecall.run.sender import CallSender, FollowUp, watch_exchanges
from batchrecall.vendors.base import Adapter

log = structlog.get_logger("batchrecall")

_ROWS_BETWEEN_CHECKPOINTS = 256
"""Rows written without sending (or for held work) between two looks at the event loop."""
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
    """Only these rows belong to this run (a shard of the job); None: all of them. Used when
    the run reads the jobs itself (a partition given to `run` was filtered by its pass)."""
    shared: PermitStore | None = None
    """Windows shared with other processes (Redis); None: this process's own limits only."""
    identity: Callable[[LaneKey], str] = str
    """A lane's vendor app identity in the shared store."""

    def __post_init__(self) -> None:
        self.policy = RetryPolicy(max_attempts=self.run_settings.max_attempts)
        self.lanes: dict[LaneKey, Lane] = {}
        self._states: dict[LaneKey, str] = {}
        self._call_numbers = itertools.count(1)
        self._slots = anyio.CapacityLimiter(self.run_settings.concurrency)
        self._interrupted = False

    # -- public ------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return sum(lane.in_flight for lane in self.lanes.values())

    def request_stop(self, reason: ErrorCode = ErrorCode.INTERRUPTED) -> None:
        """No new call is sent from now on; calls in flight finish; what the lanes hold gets its
        rows (an interrupt reads no more of the job: the rest is left to do)."""
        if reason is ErrorCode.INTERRUPTED:
            self._interrupted = True  # also cuts short the rows a halt or a lane stop writes
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        in_flight = self.in_flight
        log.warning("batchrecall.stopping", reason=str(reason), in_flight=in_flight)
        if reason is ErrorCode.INTERRUPTED:  # the operator asked: say what happens now
            self.progress.stopping(in_flight)
        for lane in self.lanes.values():
            lane.halt()

    async def run(self, jobs: Sequence[JobRef] | Partition) -> Summary:
        """Send the items of a partition (what the plan's pass left), or of job files, which
        are then read here, once."""
        partition = jobs if isinstance(jobs, Partition) else self._partition(jobs)
        try:
            return await self._run(partition)
        finally:
            if partition is not jobs:
                partition.close()

    def _partition(self, jobs: Sequence[JobRef]) -> Partition:
        partition = Partition()
        try:
            build_plan(
                jobs,
                limit=lambda item: 1,
                rate=lambda key: 0.0,
                settled=self._settled if self.resume is not None else None,
                keep=self.select,
                partition=partition,
            )
        except BaseException:
            partition.close()
            raise
        return partition

    def _settled(self, item_key: str) -> str | None:
        assert self.resume is not None
        outcome = self.resume.outcome(item_key)
        return outcome[0] if outcome is not None and is_done(*outcome) else None

    async def _run(self, partition: Partition) -> Summary:
        self.summary.start(self.clock.now())
        self.summary.add_kept(partition.kept_statuses, partition.kept_duplicates)
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
            lanes=[str(key) for key in partition.lanes],
            resume=self.resume is not None,
        )
        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._sync_results)
                async with anyio.create_task_group() as tg:
                    self._task_group = tg
                    for key in partition.lanes:
                        self._open_lane(key, partition)
                    tg.start_soon(self._write_rows, partition)
                outer.cancel_scope.cancel()
        finally:
            # Plain code: it runs to its end even when the run was cancelled.
            for lane in self.lanes.values():
                # Cancelled (a second interrupt): what the lanes still hold gets its rows now,
                # in one write each; what they never read is left to do.
                lane.backlog.drop_unread()
                self._write_unsent(lane, self._take_held(lane, list(lane.take_everything())))
                self.summary.left_unread += lane.backlog.dropped
                lane.close()
            self.writer.sync()
            self.summary.stop_reason = self.stop_reason or ""
            self.summary.finish(self.clock.now(), self.lanes)
            log.info(
                "batchrecall.run_finished",
                run_id=self.run_id,
                statuses={str(k): n for k, n in self.summary.statuses.items()},
                left_unread=self.summary.left_unread,
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

    # -- rows written without sending -----------------------------------------------------

    async def _write_rows(self, partition: Partition) -> None:
        """Invalid rows and repeats, beside the lanes' sending; an interrupt stops them (the
        next run writes them again)."""
        for count, row in enumerate(partition.written_rows(), start=1):
            if self._interrupted:
                return
            if isinstance(row, InvalidRow):
                self.record.invalid(row)
            else:
                self.record.duplicate(row)
            if count % _ROWS_BETWEEN_CHECKPOINTS == 0:
                await anyio.lowlevel.checkpoint()

    def _open_lane(self, key: LaneKey, partition: Partition) -> Lane:
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
        planner = Planner(
            limit=lambda item: adapter.max_items(item.op),
            run_id=self.run_id,
            numbers=self._call_numbers,
            max_buffered=_PLANNER_BUFFER,
        )
        lane.backlog = Backlog(key, partition.lane_source(key), planner)
        lane.input_done = True  # its whole share of the job is in its file
        self.lanes[key] = lane
        log.info(
            "batchrecall.lane_opened",
            lane=str(key),
            rate=lane.rate,
            items=partition.lane_items[key],
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
        if lane.fatal is None and lane.backlog.dropped:
            reason = f"{lane.backlog.dropped:,} not read"  # left to do, without a row
            self.progress.lane_state(lane.key, LaneState(kind="stopped", reason=reason))

    async def _launch(self, lane: Lane, work: Work) -> None:
        """The adapter made ready, then the lane's permit, a run-wide slot and the shared
        window's permit, then the request leaves in its own task. A stop ends every wait at once
        (the lane's cancel scope, which its halt() cancels), and nothing leaves after it."""
        holding = False
        try:
            with anyio.CancelScope() as scope:
                lane.slot_wait = scope
                if lane.halted.is_set():
                    scope.cancel()
                failed = await self.sender.prepare(lane, work)
                if failed is None:
                    holding = await self._wait_to_send(lane, work)
            lane.slot_wait = None
            if scope.cancelled_caught:
                return  # the work stays in hand and gets its row with the lane's held work
            if failed is not None:
                lane.in_hand = None
                self._follow_up(lane, work, failed)
                return
            if not holding or lane.halted.is_set():
                return
            # No await from the last look at the stop to the request's task.
            lane.record_send(work, self.clock.now())
            lane.in_hand = None
            lane.in_flight += 1
            self._task_group.start_soon(self._send, lane, work)
            holding = False  # the send task gives the slot back
        finally:
            if holding:
                self._slots.release_on_behalf_of(work)
        self._state(lane, LaneState(kind="sending"))
        self.progress.call_sent(lane.key)

    async def _wait_to_send(self, lane: Lane, work: Work) -> bool:
        """Wait for the lane's permit, a slot and the shared window's permit; True holding the
        slot, False when the lane stopped meanwhile (the slot given back)."""
        while not lane.halted.is_set():
            now = self.clock.now()
            delay = lane.permit_delay(now)
            if delay > 0:
                await self.clock.sleep_until(now + delay, lane.halted)
                continue
            await self._slots.acquire_on_behalf_of(work)
            try:
                if lane.permit_delay(self.clock.now()) > 0:  # a throttle answer came meanwhile
                    shared_wait = -1.0
                else:
                    shared_wait = await lane.shared_permit(work)
            except LimiterUnavailableError as exc:
                self._slots.release_on_behalf_of(work)
                if not lane.halted.is_set():  # a stop is no limiter failure
                    self.sender.lane_stopped_by(lane, exc)
                return False  # the work stays in hand: skipped / lane-stopped
            except BaseException:
                self._slots.release_on_behalf_of(work)
                raise
            if shared_wait == 0:
                return True
            self._slots.release_on_behalf_of(work)
            if shared_wait > 0:  # another process took the window's permits
                if lane.in_hand is not work:
                    return False  # parked behind its user's window: the lane goes on
                await self.clock.sleep_until(self.clock.now() + shared_wait, lane.halted)
        return False

    async def _send(self, lane: Lane, work: Work) -> None:
        try:
            follow_up = await self.sender.send(lane, work)
        finally:
            self._slots.release_on_behalf_of(work)
            lane.in_flight -= 1
            lane.notify()
        self._follow_up(lane, work, follow_up)
        if self.stop_reason is None:  # a stopping run does not wait on the shared store
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
        """Rows for the work the lane holds (in hand, queued, parked, waiting to retry): on an
        interrupt only what it read, in one write; on a halt or a lane stop also the rest of its
        file, a batch at a time, which an interrupt cuts short (the rest is then left to do)."""
        if self._interrupted:
            lane.backlog.drop_unread()
        held = lane.take_everything()
        while not self._interrupted:
            batch = list(itertools.islice(held, _ROWS_BETWEEN_CHECKPOINTS))
            if not batch:
                return
            self._write_unsent(lane, self._take_held(lane, batch))
            await anyio.lowlevel.checkpoint()
            if self._interrupted:
                lane.backlog.drop_unread()
        self._write_unsent(lane, self._take_held(lane, list(held)))

    def _take_held(self, lane: Lane, works: list[Work]) -> list[Item]:
        """Rows for held work that was answered before (its last answer); the other items,
        never answered, to be written together."""
        plain: list[Item] = []
        for work in works:
            if work.last_error is not None and work.attempts > 0:
                self.sender.unsent(lane, work, self.stop_reason)
            else:
                plain.extend(work.call.items)
        return plain

    def _write_unsent(self, lane: Lane, items: list[Item]) -> None:
        if not items:
            return
        if lane.fatal is not None:
            self.record.lane_stopped(items, lane.key, str(lane.fatal.code))
        else:
            self.record.stopped(items, self.stop_reason)

    def _state(self, lane: Lane, state: LaneState) -> None:
        if self._states.get(lane.key) != state.kind:
            self._states[lane.key] = state.kind
            self.progress.lane_state(lane.key, state)
