"""Sending one call until every item has an outcome: permits, retries, splits and stops."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import anyio
import structlog

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
from batchrecall.models import Call, Item, ItemOutcome, Status
from batchrecall.results.recorder import LaneState, ProgressSink, Recorder, outcome_of
from batchrecall.run.clock import Clock
from batchrecall.run.lanes import Lane
from batchrecall.run.retry import RetryPolicy

log = structlog.get_logger("batchrecall")


class RunControl(Protocol):
    """What a sender needs of its run: whether it is stopping, and a way to stop it."""

    stop_reason: ErrorCode | None

    def request_stop(self, reason: ErrorCode = ErrorCode.INTERRUPTED) -> None: ...


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


class _Stopped:
    """The lane or the run stopped before this call got its permit."""


_STOPPED = _Stopped()


@dataclass
class CallSender:
    run: RunControl
    record: Recorder
    policy: RetryPolicy
    slots: anyio.CapacityLimiter
    clock: Clock
    rng: random.Random
    progress: ProgressSink

    async def process(self, lane: Lane, call: Call, attempts: int = 0) -> None:
        """Send one call until every item has an outcome, retrying what is transient."""
        limit = lane.adapter.max_items(call.op)
        if len(call.items) > limit:
            for part in _split(call, limit):
                await self.process(lane, part, attempts)
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
                        await self.process(lane, part, state.attempts)
                    return
                pending = step.call
                await self._backoff(step.delay)
        except anyio.get_cancelled_exc_class():
            if not state.reported:
                self.run.request_stop(ErrorCode.INTERRUPTED)
                self.unsent(pending.items, lane, state, call.call_id)
            raise
        self.unsent(pending.items, lane, state, call.call_id)

    async def _attempt(
        self, lane: Lane, call: Call, state: _Attempt, pacing: str | None
    ) -> _Next | _Stopped:
        """One request, sent within the lane's rate and the run's concurrency."""
        if self.run.stop_reason is not None or lane.stopped:
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
                await self.slots.acquire()
                try:
                    permitted = await lane.acquire()
                except BaseException:
                    self.slots.release()
                    raise
            if not permitted:
                self.slots.release()
                return _STOPPED
            try:
                if pacing is not None:
                    lane.keyed.record(pacing)
                outcomes = await self._send(lane, call, state)
            finally:
                self.slots.release()
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
                raise  # not sent: process() reports it
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
            self.progress.lane_state(
                lane.key, LaneState(kind="throttled", until=time.time() + pause)
            )
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
        if delay is None or self.run.stop_reason is not None or lane.stopped:
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
        while (left := end - self.clock.now()) > 0 and self.run.stop_reason is None:
            await self.clock.sleep(min(left, 0.25))

    def unsent(
        self, items: Sequence[Item], lane: Lane, state: _Attempt | None, call_id: str
    ) -> None:
        """Items that will not be sent (again): their last answer, or why they were held back."""
        if state is not None and state.last_error is not None:
            self.record.failed_before(items, state.last_error, state.attempts, call_id)
        elif lane.fatal is not None:
            self.record.lane_stopped(items, lane.key, str(lane.fatal.code))
        else:
            self.record.stopped(items, self.run.stop_reason)


def _split(call: Call, size: int) -> Iterator[Call]:
    for start in range(0, len(call.items), size):
        part = call.items[start : start + size]
        suffix = f".{start // size + 1}" if len(call.items) > size else ""
        yield replace(call, call_id=call.call_id + suffix, items=part)
