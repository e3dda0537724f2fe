"""The run: job rows -> planner -> lanes -> adapters -> one result row per item.

Every lane reads the job files on its own, so a slow lane never holds up a fast one while memory
stays flat; a scout pass writes the invalid rows and opens each lane when it first sees it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.lowlevel
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from batchrecall.clock import Clock, MonotonicClock
from batchrecall.config import RunSettings
from batchrecall.errors import (
    TRANSIENT_CODES,
    CallError,
    ErrorCode,
    LaneFatalError,
    PermanentCallError,
    SplitCallError,
    ThrottledError,
    TokenRejectedError,
    TransientCallError,
)
from batchrecall.jobs import read_job
from batchrecall.lanes import Lane, Work
from batchrecall.models import Call, InvalidRow, Item, ItemOutcome, LaneKey, Status
from batchrecall.planning import Planner
from batchrecall.recorder import ProgressSink, Recorder, outcome_of
from batchrecall.results import ResultsWriter, ResumeIndex, is_done
from batchrecall.retry import RetryPolicy
from batchrecall.summary import Summary
from batchrecall.vendors.base import Adapter

log = structlog.get_logger("batchrecall")

Row = Item | InvalidRow
_T = TypeVar("_T")
_CHECKPOINT_EVERY = 256

__all__ = ["Engine", "JobRef", "ProgressSink"]


@dataclass(frozen=True, slots=True)
class JobRef:
    path: Path
    name: str


@dataclass
class _Attempt:
    """What happened to a call so far: requests that reached the vendor, and the last error."""

    attempts: int = 0
    """Requests that reached the vendor carrying these items (the results' `attempts`)."""
    tries: int = 0
    """Every try, reached or not: what `max_attempts` limits."""
    last_error: CallError | None = None
    token_refreshed: bool = False
    in_flight: bool = False
    reported: bool = False


@dataclass(frozen=True, slots=True)
class _Retry:
    call: Call
    delay: float


@dataclass(frozen=True, slots=True)
class _Split:
    parts: list[Call]


_Next = _Retry | _Split | None
"""After one attempt: retry (some of) the call, send it in parts, or nothing more to do."""


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
                    await self._process(lane, job.call)
                finally:
                    if job.done is not None:
                        job.done.set()

    async def _process(self, lane: Lane, call: Call, attempts: int = 0) -> None:
        """Send one call until every item has an outcome, retrying what is transient."""
        limit = lane.adapter.max_items(call.op)
        if len(call.items) > limit:
            for part in _split(call, limit):
                await self._process(lane, part, attempts)
            return
        state = _Attempt(attempts=attempts, tries=attempts)
        pending = call
        pacing = lane.adapter.pacing_key(call)
        try:
            while True:
                if pacing is not None and not await lane.wait_for_key(pacing):
                    break
                step = await self._attempt(lane, pending, state, pacing)
                if step is None:
                    return
                if isinstance(step, _Stopped):
                    break
                if isinstance(step, _Split):
                    for part in step.parts:
                        await self._process(lane, part, state.attempts)
                    return
                pending = step.call
                await self._backoff(step.delay)
        except anyio.get_cancelled_exc_class():
            if not state.reported:
                self.request_stop(ErrorCode.INTERRUPTED)
                self._unsent(pending.items, lane, state, call.call_id)
            raise
        self._unsent(pending.items, lane, state, call.call_id)

    async def _attempt(
        self, lane: Lane, call: Call, state: _Attempt, pacing: str | None
    ) -> _Next | _Stopped:
        """One request, sent within the lane's rate and the run's concurrency."""
        if self.stop_reason is not None or lane.stopped:
            return _STOPPED
        try:
            try:
                await lane.adapter.prepare()
            except CallError:
                state.tries += 1
                raise
            # One worker of a lane at a time takes a slot and waits for the lane's permit, so the
            # request leaves the moment its permit is granted and bunches up nowhere.
            async with lane.gate:
                await self._slots.acquire()
                try:
                    permitted = await lane.acquire()
                except BaseException:
                    self._slots.release()
                    raise
            if not permitted:
                self._slots.release()
                return _STOPPED
            try:
                if pacing is not None:
                    lane.keyed.record(pacing)
                outcomes = await self._send(lane, call, state)
            finally:
                self._slots.release()
        except TokenRejectedError as exc:
            if state.token_refreshed:
                self._lane_fatal(lane, call, state, exc)
                return None
            state.last_error = exc  # its outcome if the lane stops before the retry
            state.token_refreshed = True
            await lane.adapter.refresh_auth(exc.token_generation)
            return _Retry(call, 0.0)
        except SplitCallError as exc:
            log.info("batchrecall.call_split", lane=str(lane.key), call_id=call.call_id)
            if len(call.items) == 1:
                self.record.finish(
                    call.items, outcome_of(exc, Status.FAILED), state.attempts, call.call_id
                )
                return None
            return _Split(list(_split(call, 1)))
        except LaneFatalError as exc:
            self._lane_fatal(lane, call, state, exc)
            return None
        except PermanentCallError as exc:
            status = Status.NOT_FOUND if exc.code == ErrorCode.NOT_FOUND else Status.FAILED
            self.record.finish(call.items, outcome_of(exc, status), state.attempts, call.call_id)
            return None
        except TransientCallError as exc:
            return self._transient(lane, call, state, exc)
        except anyio.get_cancelled_exc_class():
            if state.reported or not state.in_flight:
                raise  # not sent: _process reports it
            # A second interrupt mid-request: it may or may not have reached the vendor.
            state.reported = True
            self.record.finish(
                call.items,
                ItemOutcome(
                    status=Status.UNKNOWN,
                    error=ErrorCode.INTERRUPTED,
                    message="cancelled while the request was in flight",
                ),
                state.attempts,
                call.call_id,
            )
            raise
        return self._settle(lane, call, outcomes, state)

    async def _send(self, lane: Lane, call: Call, state: _Attempt) -> list[ItemOutcome]:
        log.debug(
            "batchrecall.call_sent",
            lane=str(lane.key),
            call_id=call.call_id,
            items=len(call.items),
            attempt=state.attempts + 1,
        )
        state.tries += 1
        state.in_flight = True
        try:
            outcomes = await lane.adapter.send(call)
        except CallError as exc:
            state.in_flight = False
            state.attempts += 1 if exc.delivered else 0
            raise
        except anyio.get_cancelled_exc_class():
            state.attempts += 1  # in flight still: the caller reports the outcome unknown
            raise
        state.in_flight = False
        state.attempts += 1
        return outcomes

    def _transient(self, lane: Lane, call: Call, state: _Attempt, exc: TransientCallError) -> _Next:
        state.last_error = exc
        if isinstance(exc, ThrottledError):
            pause = exc.retry_after or lane.adapter.default_throttle_pause_s
            lane.on_throttle(pause)
            self.progress.throttled(lane.key)
            log.info(
                "batchrecall.throttled",
                lane=str(lane.key),
                pause_s=pause,
                rate=round(lane.limiter.rate, 2),
            )
        delay = self.policy.next_delay(state.tries, exc, self.rng)
        if delay is None:
            self.record.failed_before(call.items, exc, state.attempts, call.call_id)
            return None
        return _Retry(call, delay)

    def _settle(
        self, lane: Lane, call: Call, outcomes: list[ItemOutcome], state: _Attempt
    ) -> _Next:
        """Write what the vendor settled; retry items it answered with a transient error."""
        retry: list[tuple[Item, ItemOutcome]] = []
        for item, outcome in zip(call.items, outcomes, strict=True):
            if outcome.status is Status.FAILED and outcome.error in TRANSIENT_CODES:
                retry.append((item, outcome))
            else:
                self.record.finish([item], outcome, state.attempts, call.call_id)
        if not retry:
            return None
        error = TransientCallError(ErrorCode(retry[0][1].error), retry[0][1].message)
        delay = self.policy.next_delay(state.tries, error, self.rng)
        if delay is None or self.stop_reason is not None or lane.stopped:
            for item, outcome in retry:
                self.record.finish([item], outcome, state.attempts, call.call_id)
            return None
        return _Retry(replace(call, items=tuple(item for item, _ in retry)), delay)

    def _lane_fatal(self, lane: Lane, call: Call, state: _Attempt, exc: CallError) -> None:
        lane.stop(exc)
        log.error(
            "batchrecall.lane_stopped", lane=str(lane.key), error=str(exc.code), message=exc.message
        )
        self.record.finish(call.items, outcome_of(exc, Status.FAILED), state.attempts, call.call_id)

    async def _backoff(self, delay: float) -> None:
        end = self.clock.now() + delay
        while (left := end - self.clock.now()) > 0 and self.stop_reason is None:
            await self.clock.sleep(min(left, 0.25))

    def _unsent(
        self, items: Sequence[Item], lane: Lane, state: _Attempt | None, call_id: str
    ) -> None:
        """Items that will not be sent (again): their last answer, or why they were held back."""
        if state is not None and state.last_error is not None:
            self.record.failed_before(items, state.last_error, state.attempts, call_id)
        elif lane.fatal is not None:
            self.record.lane_stopped(items, lane.key, str(lane.fatal.code))
        else:
            self.record.stopped(items, self.stop_reason)

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
                self._unsent(call.items, lane, None, "")
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


class _Stopped:
    """The lane or the run stopped before this call got its permit."""


_STOPPED = _Stopped()


def _drain(stream: MemoryObjectReceiveStream[_T]) -> list[_T]:
    drained: list[_T] = []
    while True:
        try:
            drained.append(stream.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return drained


def _split(call: Call, size: int) -> Iterator[Call]:
    for start in range(0, len(call.items), size):
        part = call.items[start : start + size]
        suffix = f".{start // size + 1}" if len(call.items) > size else ""
        yield replace(call, call_id=call.call_id + suffix, items=part)
