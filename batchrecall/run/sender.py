"""One request of a call, and what its answer means: rows for what the vendor settled, and the
work that follows (a retry, or the call's parts when it must be resent one item a call)."""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import anyio
import httpx
import structlog

from batchrecall.errors import (
    TRANSIENT_CODES,
    CallError,
    ErrorCode,
    LaneFatalError,
    LimiterUnavailableError,
    PermanentCallError,
    SplitCallError,
    ThrottledError,
    TokenRejectedError,
    TransientCallError,
)
from batchrecall.models import Call, Item, ItemOutcome, Status
from batchrecall.results.recorder import LaneState, ProgressSink, Recorder, outcome_of
from batchrecall.run.clock import Clock
from batchrecall.run.lanes import Lane, Work
from batchrecall.run.retry import RetryPolicy
from batchrecall.vendors.base import NO_ITEMS_EXTENSION

log = structlog.get_logger("batchrecall")

_ANSWER_HEAD = 200


@dataclass
class Exchange:
    """What the HTTP client did for the current request: whether it left, and the answer."""

    sent: bool = False
    response: httpx.Response | None = None


_current_exchange: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "batchrecall_exchange", default=None
)


async def _on_request(request: httpx.Request) -> None:
    exchange = _current_exchange.get()
    if exchange is not None and not _carries_no_items(request):
        exchange.sent = True


async def _on_response(response: httpx.Response) -> None:
    exchange = _current_exchange.get()
    if exchange is not None and not _carries_no_items(response.request):
        exchange.response = response


def _carries_no_items(request: httpx.Request) -> bool:
    """A request the call needs but that holds none of its items (a token request): that it
    left says nothing of the items, and its answer (a token) is not the call's."""
    return request.extensions.get(NO_ITEMS_EXTENSION) is True


def watch_exchanges(client: httpx.AsyncClient) -> None:
    """Let the sender see whether a request left when an adapter fails in an unexpected way."""
    hooks = client.event_hooks
    if _on_request not in hooks["request"]:
        client.event_hooks = {
            "request": [*hooks["request"], _on_request],
            "response": [*hooks["response"], _on_response],
        }


@dataclass(frozen=True, slots=True)
class FollowUp:
    """Work an attempt leaves behind: a retry of (some of) its items, or its parts."""

    retry: Work | None = None
    parts: tuple[Work, ...] = field(default=())


_DONE = FollowUp()


@dataclass
class CallSender:
    record: Recorder
    policy: RetryPolicy
    clock: Clock
    rng: random.Random
    progress: ProgressSink

    async def prepare(self, lane: Lane, work: Work) -> FollowUp | None:
        """Get the adapter ready (an auth token); a FollowUp when that failed, else None."""
        try:
            await lane.adapter.prepare()
        except CallError as exc:
            work.tries += 1
            return self._failed(lane, work, exc)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            return self._crashed(lane, work, exc, Exchange())
        return None

    async def send(self, lane: Lane, work: Work) -> FollowUp:
        """One request for the work; rows for every item it settled."""
        call = work.call
        work.tries += 1
        exchange = Exchange()
        token = _current_exchange.set(exchange)
        log.debug(
            "batchrecall.call_sent",
            lane=str(lane.key),
            call_id=call.call_id,
            items=len(call.items),
            attempt=work.tries,
        )
        try:
            outcomes = await lane.adapter.send(call)
        except TokenRejectedError as exc:
            work.attempts += 1
            if not work.token_refreshed:
                await lane.adapter.refresh_auth(exc.token_generation)
            return self._failed(lane, work, exc)
        except CallError as exc:
            work.attempts += 1 if exc.delivered else 0
            return self._failed(lane, work, exc)
        except anyio.get_cancelled_exc_class():
            if exchange.sent:  # it may have reached the vendor: the outcome is unknown
                work.attempts += 1
                self.record.finish(
                    call.items,
                    ItemOutcome(
                        status=Status.UNKNOWN,
                        error=ErrorCode.INTERRUPTED,
                        message="cancelled while the request was in flight",
                    ),
                    work.attempts,
                    call.call_id,
                )
            else:  # cancelled before it left (getting a token, say): not sent this time
                self.unsent(lane, work, ErrorCode.INTERRUPTED)
            raise
        except Exception as exc:
            return self._crashed(lane, work, exc, exchange)
        finally:
            _current_exchange.reset(token)
        try:
            settled, retry = _sort_outcomes(call.items, outcomes)
        except AdapterContractError as exc:  # a bug in the adapter, as if it had raised
            return self._crashed(lane, work, exc, exchange)
        work.attempts += 1
        return self._settle(lane, work, settled, retry)

    def _crashed(self, lane: Lane, work: Work, exc: Exception, exchange: Exchange) -> FollowUp:
        """An answer the adapter could not read, or a bug in it: the run goes on."""
        log.exception(
            "batchrecall.adapter_failed",
            lane=str(lane.key),
            call_id=work.call.call_id,
            error=exc.__class__.__name__,
        )
        head = _answer_head(exchange.response)
        message = f"unreadable answer ({exc.__class__.__name__})" + (f": {head}" if head else "")
        http_status = exchange.response.status_code if exchange.response is not None else None
        if exchange.sent:
            work.attempts += 1
        status = Status.UNKNOWN if exchange.sent else Status.FAILED
        self.record.finish(
            work.call.items,
            ItemOutcome(
                status=status,
                error=ErrorCode.VENDOR_ERROR,
                message=message,
                http_status=http_status,
            ),
            work.attempts,
            work.call.call_id,
        )
        return _DONE

    def _failed(self, lane: Lane, work: Work, exc: CallError) -> FollowUp:
        call = work.call
        if isinstance(exc, TokenRejectedError):
            if work.token_refreshed:
                return self._lane_fatal(lane, work, exc)
            work.last_error = exc  # its outcome if the lane stops before the retry
            work.token_refreshed = True
            work.not_before = self.clock.now()
            return FollowUp(retry=work)
        if isinstance(exc, SplitCallError):
            log.info("batchrecall.call_split", lane=str(lane.key), call_id=call.call_id)
            if len(call.items) == 1:
                self.record.finish(
                    call.items, outcome_of(exc, Status.FAILED), work.attempts, call.call_id
                )
                return _DONE
            parts = tuple(
                Work(
                    call=part,
                    attempts=work.attempts,
                    tries=work.tries,
                    pacing=lane.adapter.pacing_key(part),
                )
                for part in split_call(call, 1)
            )
            return FollowUp(parts=parts)
        if isinstance(exc, LaneFatalError):
            return self._lane_fatal(lane, work, exc)
        if isinstance(exc, PermanentCallError):
            status = Status.NOT_FOUND if exc.code == ErrorCode.NOT_FOUND else Status.FAILED
            self.record.finish(call.items, outcome_of(exc, status), work.attempts, call.call_id)
            return _DONE
        if isinstance(exc, TransientCallError):
            return self._transient(lane, work, exc)
        self.record.finish(call.items, outcome_of(exc, Status.FAILED), work.attempts, call.call_id)
        return _DONE

    def _transient(self, lane: Lane, work: Work, exc: TransientCallError) -> FollowUp:
        work.last_error = exc
        if isinstance(exc, ThrottledError):
            pause = exc.retry_after or lane.adapter.default_throttle_pause_s
            lane.on_throttle(pause, work.sent_at or None)  # 0: throttled before it was sent
            self.progress.lane_state(
                lane.key, LaneState(kind="throttled", until=time.time() + pause)
            )
            log.info(
                "batchrecall.throttled",
                lane=str(lane.key),
                call_id=work.call.call_id,
                attempt=work.tries,
                http_status=exc.http_status,
                vendor_code=exc.vendor_code,
                pause_s=pause,
                rate=round(lane.limiter.rate, 2),
            )
        delay = self.policy.next_delay(work.tries, exc, self.rng)
        if delay is None:
            self.record.failed_before(work.call.items, exc, work.attempts, work.call.call_id)
            return _DONE
        log.info(
            "batchrecall.retry_scheduled",
            lane=str(lane.key),
            call_id=work.call.call_id,
            attempt=work.tries,
            error=str(exc.code),
            http_status=exc.http_status,
            vendor_code=exc.vendor_code,
            delay_s=round(delay, 3),
        )
        work.not_before = self.clock.now() + delay
        return FollowUp(retry=work)

    def _settle(
        self,
        lane: Lane,
        work: Work,
        settled: list[tuple[Item, ItemOutcome]],
        retry: list[tuple[Item, ItemOutcome]],
    ) -> FollowUp:
        """Write what the vendor settled (one write for the call); retry items it answered with
        a transient error."""
        call = work.call
        delay: float | None = None
        if retry:
            first = retry[0][1]
            error = TransientCallError(
                ErrorCode(first.error),
                first.message,
                http_status=first.http_status,
                vendor_code=first.vendor_code,
            )
            delay = self.policy.next_delay(work.tries, error, self.rng)
            if delay is None:  # out of attempts: their last answer is their outcome
                settled, retry = settled + retry, []
        self.record.finish_each(settled, work.attempts, call.call_id)
        if not retry or delay is None:
            return _DONE
        work.call = replace(call, items=tuple(item for item, _ in retry))
        work.last_error = error
        work.not_before = self.clock.now() + delay
        return FollowUp(retry=work)

    def _lane_fatal(self, lane: Lane, work: Work, exc: CallError) -> FollowUp:
        self.lane_stopped_by(lane, exc)
        call = work.call
        if work.attempts == 0:  # nothing reached the vendor: it did nothing with these items
            self.record.lane_stopped(call.items, lane.key, str(exc.code))
        else:
            self.record.finish(
                call.items, outcome_of(exc, Status.FAILED), work.attempts, call.call_id
            )
        return _DONE

    async def share_pause(self, lane: Lane) -> None:
        """Tell the other processes of a throttle pause the lane took. A shared limiter that
        stays unavailable stops the lane, as when it gives no permit: never the run."""
        try:
            await lane.share_pause()
        except LimiterUnavailableError as exc:
            if not lane.stopped:
                self.lane_stopped_by(lane, exc)

    def lane_stopped_by(self, lane: Lane, exc: CallError) -> None:
        """A lane-stopping error outside any call (the shared limiter stayed unreachable)."""
        lane.stop(exc)
        log.error(
            "batchrecall.lane_stopped", lane=str(lane.key), error=str(exc.code), message=exc.message
        )
        self.progress.lane_state(lane.key, LaneState(kind="stopped", reason=str(exc.code)))

    def unsent(self, lane: Lane, work: Work, reason: ErrorCode | None) -> None:
        """Rows for work that will not be sent (again): its last answer, or why it was held."""
        items = work.call.items
        if work.last_error is not None and work.attempts > 0:
            self.record.failed_before(items, work.last_error, work.attempts, work.call.call_id)
        elif lane.fatal is not None:
            self.record.lane_stopped(items, lane.key, str(lane.fatal.code))
        else:
            self.record.stopped(items, reason)


class AdapterContractError(Exception):
    """An adapter answered against its contract (not one outcome per item, in order)."""


def _sort_outcomes(
    items: tuple[Item, ...], outcomes: object
) -> tuple[list[tuple[Item, ItemOutcome]], list[tuple[Item, ItemOutcome]]]:
    """The items the answer settled, and those to retry (a transient error of their own);
    AdapterContractError when the answer is not one ItemOutcome per item."""
    if not isinstance(outcomes, list) or len(outcomes) != len(items):
        count = len(outcomes) if isinstance(outcomes, list) else type(outcomes).__name__
        raise AdapterContractError(f"{count} outcomes for {len(items)} items")
    settled: list[tuple[Item, ItemOutcome]] = []
    retry: list[tuple[Item, ItemOutcome]] = []
    for item, outcome in zip(items, outcomes, strict=True):
        if not isinstance(outcome, ItemOutcome) or outcome.status not in _OUTCOME_STATUSES:
            raise AdapterContractError(f"not an item outcome: {type(outcome).__name__}")
        if outcome.status is Status.FAILED and outcome.error in TRANSIENT_CODES:
            retry.append((item, outcome))
        else:
            settled.append((item, outcome))
    return settled, retry


_OUTCOME_STATUSES = frozenset({Status.OK, Status.NOT_FOUND, Status.FAILED, Status.UNKNOWN})


def split_call(call: Call, size: int) -> Iterator[Call]:
    for start in range(0, len(call.items), size):
        part = call.items[start : start + size]
        suffix = f".{start // size + 1}" if len(call.items) > size else ""
        yield replace(call, call_id=call.call_id + suffix, items=part)


def _answer_head(response: httpx.Response | None) -> str:
    if response is None:
        return ""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return ""
    return content[:_ANSWER_HEAD].decode("utf-8", errors="replace")
