"""The run: job rows -> planner -> lanes -> adapters -> one result row per item."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.lowlevel
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream

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
from batchrecall.models import (
    Call,
    InvalidRow,
    Item,
    ItemOutcome,
    LaneKey,
    ResultRow,
    Status,
)
from batchrecall.planning import Planner
from batchrecall.results import ResultsWriter, ResumeIndex, utc_now
from batchrecall.retry import RetryPolicy
from batchrecall.summary import Summary
from batchrecall.vendors.base import Adapter

log = structlog.get_logger("batchrecall")

_SENT_STATUSES = frozenset({Status.OK, Status.NOT_FOUND, Status.FAILED, Status.UNKNOWN})


class ProgressSink:
    """Receives progress as items finish; the terminal display implements it."""

    def item_done(self, lane: LaneKey, count: int) -> None:
        """Called after rows for `count` items of `lane` were written."""

    def throttled(self, lane: LaneKey) -> None:
        """Called when a lane pauses for a throttle answer."""


@dataclass(frozen=True, slots=True)
class JobRef:
    path: Path
    name: str


@dataclass
class _Attempt:
    """What happened to a call so far: requests that reached the vendor, and the last error."""

    attempts: int = 0
    last_error: CallError | None = None
    token_refreshed: bool = False
    reported: bool = False


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
        self._inboxes: dict[LaneKey, anyio.abc.ObjectSendStream[Call]] = {}
        # Receiving ends kept open so that calls still queued can be reported after a cancel.
        self._leftover_calls: list[MemoryObjectReceiveStream[Call]] = []
        self._leftovers: list[MemoryObjectReceiveStream[Work]] = []
        self._slots = anyio.CapacityLimiter(self.run_settings.concurrency)
        self._planner = Planner(limit=self._limit, run_id=self.run_id)
        self._rows: Iterator[Item | InvalidRow] | None = None
        self._in_hand: Call | None = None
        self._decided = 0
        self._failed = 0

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
        self._rows = self._all_rows(jobs)
        try:
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                await self._produce()
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

    # -- producer ----------------------------------------------------------------------------

    def _all_rows(self, jobs: Sequence[JobRef]) -> Iterator[Item | InvalidRow]:
        for job in jobs:
            yield from read_job(job.path, job_name=job.name)

    async def _produce(self) -> None:
        assert self._rows is not None
        for count, row in enumerate(self._rows):
            if count % 256 == 0:
                await anyio.lowlevel.checkpoint()
            for call in self._take(row):
                await self._hand_to_lane(call)
        for call in self._planner.flush():
            await self._hand_to_lane(call)
        for inbox in self._inboxes.values():
            await inbox.aclose()

    async def _hand_to_lane(self, call: Call) -> None:
        self._in_hand = call
        await self._inbox(call.lane).send(call)
        self._in_hand = None

    def _take(self, row: Item | InvalidRow) -> Iterator[Call]:
        """Write what needs no call at once; yield calls that are full."""
        if self.resume is not None and self.resume.is_done(row.item_key):
            self.summary.kept(*self.resume.latest[row.item_key])
            return
        if isinstance(row, InvalidRow):
            self._write_invalid(row)
            return
        if self._planner.is_duplicate(row):
            self._write([row], Status.SKIPPED, ErrorCode.DUPLICATE, "same item earlier in this run")
            return
        if self.stop_reason is not None:
            self._write_stopped([row])
            return
        lane = self._lane(row.lane)
        if lane.stopped:
            self._write_unsent([row], lane, None, "")
            return
        yield from self._planner.add(row)

    def _inbox(self, key: LaneKey) -> anyio.abc.ObjectSendStream[Call]:
        self._lane(key)
        return self._inboxes[key]

    def _lane(self, key: LaneKey) -> Lane:
        lane = self.lanes.get(key)
        if lane is not None:
            return lane
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
        # Bounded streams give backpressure: the reader waits while the lane is busy.
        size = max(4, self.run_settings.concurrency)
        inbox_send, inbox_receive = anyio.create_memory_object_stream[Call](size)
        work_send, work_receive = anyio.create_memory_object_stream[Work](size)
        self._inboxes[key] = inbox_send
        self._leftover_calls.append(inbox_receive.clone())
        self._leftovers.append(work_receive.clone())
        tg = self._task_group
        tg.start_soon(lane.dispatch, inbox_receive, work_send, tg)
        for _ in range(self.run_settings.concurrency):
            tg.start_soon(self._worker, lane, work_receive.clone())
        work_receive.close()
        return lane

    def _limit(self, item: Item) -> int:
        return self._lane(item.lane).adapter.max_items(item.op)

    # -- workers -----------------------------------------------------------------------------

    async def _worker(self, lane: Lane, work: anyio.abc.ObjectReceiveStream[Work]) -> None:
        async with work:
            async for job in work:
                try:
                    await self._process(lane, job.call)
                finally:
                    if job.done is not None:
                        job.done.set()

    async def _process(self, lane: Lane, call: Call) -> None:
        """Send one call until it has an outcome for every item, retrying what is transient."""
        state = _Attempt()
        pending = call
        limit = lane.adapter.max_items(call.op)
        if len(call.items) > limit:
            for part in _split(call, limit):
                await self._process(lane, part)
            return
        pacing = lane.adapter.pacing_key(call)
        try:
            while True:
                if pacing is not None and not await lane.wait_for_key(pacing):
                    break
                if not await lane.acquire():
                    break
                if pacing is not None:
                    lane.keyed.record(pacing)
                outcome = await self._attempt(lane, pending, state)
                if outcome is None:
                    return
                pending, delay = outcome
                await self._backoff(delay)
        except anyio.get_cancelled_exc_class():
            if not state.reported:
                self.request_stop(ErrorCode.INTERRUPTED)
                self._write_unsent(pending.items, lane, state, call.call_id)
            raise
        self._write_unsent(pending.items, lane, state, call.call_id)

    async def _attempt(self, lane: Lane, call: Call, state: _Attempt) -> tuple[Call, float] | None:
        """One request. Returns the items to retry and the delay, or None when all are done."""
        try:
            async with self._slots:
                log.debug(
                    "batchrecall.call_sent",
                    lane=str(lane.key),
                    call_id=call.call_id,
                    items=len(call.items),
                    attempt=state.attempts + 1,
                )
                try:
                    outcomes = await lane.adapter.send(call)
                except BaseException as exc:
                    if not isinstance(exc, CallError) or exc.delivered:
                        state.attempts += 1
                    raise
                state.attempts += 1
        except TokenRejectedError as exc:
            if state.token_refreshed:
                self._lane_fatal(lane, call, state, exc)
                return None
            state.token_refreshed = True
            await lane.adapter.refresh_auth(exc.token_generation)
            return call, 0.0
        except SplitCallError as exc:
            log.info(
                "batchrecall.call_split",
                lane=str(lane.key),
                call_id=call.call_id,
                reason=exc.message,
            )
            for part in _split(call, 1):
                await self._process(lane, part)
            return None
        except LaneFatalError as exc:
            self._lane_fatal(lane, call, state, exc)
            return None
        except PermanentCallError as exc:
            status = Status.NOT_FOUND if exc.code == ErrorCode.NOT_FOUND else Status.FAILED
            self._finish(call.items, _outcome_of(exc, status), state.attempts, call.call_id)
            return None
        except TransientCallError as exc:
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
            delay = self.policy.next_delay(state.attempts, exc, self.rng)
            if delay is None:
                self._finish(
                    call.items, _outcome_of(exc, Status.FAILED), state.attempts, call.call_id
                )
                return None
            return call, delay
        except anyio.get_cancelled_exc_class():
            # A second interrupt: the request may or may not have reached the vendor.
            state.reported = True
            self._finish(
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

    def _settle(
        self, lane: Lane, call: Call, outcomes: list[ItemOutcome], state: _Attempt
    ) -> tuple[Call, float] | None:
        retry: list[Item] = []
        for item, outcome in zip(call.items, outcomes, strict=True):
            if outcome.status is Status.FAILED and outcome.error in TRANSIENT_CODES:
                retry.append(item)
            else:
                self._finish([item], outcome, state.attempts, call.call_id)
        if not retry:
            return None
        error = TransientCallError(ErrorCode(outcomes[call.items.index(retry[0])].error), "")
        delay = self.policy.next_delay(state.attempts, error, self.rng)
        if delay is None or self.stop_reason is not None or lane.stopped:
            for item in retry:
                self._finish([item], outcomes[call.items.index(item)], state.attempts, call.call_id)
            return None
        return replace(call, items=tuple(retry)), delay

    def _lane_fatal(self, lane: Lane, call: Call, state: _Attempt, exc: CallError) -> None:
        lane.stop(exc)
        log.error(
            "batchrecall.lane_stopped", lane=str(lane.key), error=str(exc.code), message=exc.message
        )
        self._finish(call.items, _outcome_of(exc, Status.FAILED), state.attempts, call.call_id)

    async def _backoff(self, delay: float) -> None:
        end = self.clock.now() + delay
        while (left := end - self.clock.now()) > 0 and self.stop_reason is None:
            await self.clock.sleep(min(left, 0.25))

    # -- rows --------------------------------------------------------------------------------

    def _finish(
        self, items: Sequence[Item], outcome: ItemOutcome, attempts: int, call_id: str
    ) -> None:
        self._write(
            items,
            outcome.status,
            outcome.error,
            outcome.message,
            http_status=outcome.http_status,
            vendor_code=outcome.vendor_code,
            attempts=attempts,
            call_id=call_id,
        )
        if outcome.status in _SENT_STATUSES:
            self._decided += len(items)
            if outcome.status in (Status.FAILED, Status.UNKNOWN):
                self._failed += len(items)
            self._check_halt()

    def _check_halt(self) -> None:
        settings = self.run_settings
        if self.stop_reason is not None or self._decided < settings.halt_min_items:
            return
        if self._failed / self._decided > settings.halt_failure_rate:
            self.request_stop(ErrorCode.HALTED)

    def _write_unsent(
        self, items: Sequence[Item], lane: Lane, state: _Attempt | None, call_id: str
    ) -> None:
        """Items that will not be sent (again): their last answer, or why they were held back."""
        if state is not None and state.last_error is not None:
            self._finish(
                items, _outcome_of(state.last_error, Status.FAILED), state.attempts, call_id
            )
        elif lane.fatal is not None:
            self._write(
                items,
                Status.SKIPPED,
                ErrorCode.LANE_STOPPED,
                f"not sent: lane {lane.key} stopped on {lane.fatal.code}",
            )
        else:
            self._write_stopped(items)

    def _write_stopped(self, items: Sequence[Item]) -> None:
        reason = self.stop_reason or ErrorCode.INTERRUPTED
        self._write(items, Status.SKIPPED, reason, _STOP_MESSAGES[reason])

    def _write_invalid(self, row: InvalidRow) -> None:
        result = ResultRow(
            job=row.job,
            line=row.line,
            index=0,
            ref=row.ref,
            vendor=row.vendor,
            app=row.app,
            op=row.op,
            target="",
            item_key=row.item_key,
            status=Status.INVALID,
            error=ErrorCode.INVALID_ROW,
            message=f"line {row.line}: {row.problem}",
            http_status=None,
            vendor_code="",
            attempts=0,
            call_id="",
            finished_at=utc_now(),
        )
        self._emit([result])

    def _write(
        self,
        items: Sequence[Item],
        status: Status,
        error: str,
        message: str,
        *,
        http_status: int | None = None,
        vendor_code: str = "",
        attempts: int = 0,
        call_id: str = "",
    ) -> None:
        now = utc_now()
        rows = [
            ResultRow(
                job=item.job,
                line=item.line,
                index=item.index,
                ref=item.ref,
                vendor=item.vendor,
                app=item.app,
                op=item.op,
                target=item.target,
                item_key=item.item_key,
                status=status,
                error=error,
                message=message,
                http_status=http_status,
                vendor_code=vendor_code,
                attempts=attempts,
                call_id=call_id,
                finished_at=now,
            )
            for item in items
        ]
        self._emit(rows)
        if items:
            self.progress.item_done(items[0].lane, len(items))

    def _emit(self, rows: list[ResultRow]) -> None:
        self.writer.write(rows)
        for row in rows:
            self.summary.add(row)

    def _report_unsent(self) -> None:
        """After the lanes closed: whatever was never sent still gets its row."""
        reason = self.stop_reason or ErrorCode.INTERRUPTED
        unsent: list[Item] = list(self._in_hand.items) if self._in_hand else []
        for lane_calls in self._leftover_calls:
            unsent.extend(item for call in _drain(lane_calls) for item in call.items)
        for works in self._leftovers:
            unsent.extend(item for work in _drain(works) for item in work.call.items)
        for lane in self.lanes.values():
            for call in lane.unsent_calls():
                unsent.extend(call.items)
        unsent.extend(item for call in self._planner.flush() for item in call.items)
        if unsent and self.stop_reason is None:
            self.stop_reason = reason
        for item in unsent:
            self._write_unsent([item], self.lanes[item.lane], None, "")
        if self._rows is not None:
            for row in self._rows:
                self.stop_reason = self.stop_reason or reason
                for _ in self._take(row):
                    pass  # nothing is sent after a stop: _take writes the row itself


_STOP_MESSAGES = {
    ErrorCode.HALTED: "not sent: the run halted on its failure rate",
    ErrorCode.INTERRUPTED: "not sent: the run was interrupted",
}


_T = TypeVar("_T")


def _drain(stream: MemoryObjectReceiveStream[_T]) -> Iterator[_T]:
    while True:
        try:
            yield stream.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return


def _split(call: Call, size: int) -> Iterator[Call]:
    for start in range(0, len(call.items), size):
        part = call.items[start : start + size]
        suffix = f".{start // size + 1}" if len(call.items) > size else ""
        yield replace(call, call_id=call.call_id + suffix, items=part)


def _outcome_of(exc: CallError, status: Status) -> ItemOutcome:
    return ItemOutcome(
        status=status,
        error=str(exc.code),
        message=exc.message,
        http_status=exc.http_status,
        vendor_code=exc.vendor_code,
    )
