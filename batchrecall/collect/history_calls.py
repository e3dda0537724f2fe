"""History calls of one lane (vendor + app): each takes a permit of the history endpoint's own
window (in this process or the `[limits]` Redis store, as `run` does), and is sent again with
backoff on a transient failure or after the pause a throttle answer asks for.

A history call only reads, so a request that may have reached the vendor unanswered is simply
asked again.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from batchrecall.errors import CallError, ThrottledError
from batchrecall.run.clock import Clock, MonotonicClock
from batchrecall.run.limits import PermitStore
from batchrecall.run.retry import RetryPolicy

__all__ = ["HistoryLane"]

T = TypeVar("T")
log = structlog.get_logger("batchrecall")


@dataclass
class HistoryLane:
    """Permits and retries for one lane's history endpoint (`key` names its window)."""

    key: str
    window: tuple[int, float]
    """At most this many calls in any this many seconds (the endpoint's documented rate
    unless the config says otherwise)."""
    store: PermitStore
    policy: RetryPolicy
    clock: Clock = field(default_factory=MonotonicClock)
    rng: random.Random = field(default_factory=random.Random)
    calls: int = 0
    retries: int = 0

    async def call(self, what: str, send: Callable[[], Awaitable[T]]) -> T:
        """`send()` once a permit is granted; again after a transient failure, up to the
        policy's attempts. The last failure is raised as it came."""
        limit, period = self.window
        attempt = 0
        while True:
            attempt += 1
            while wait := await self.store.acquire(self.key, limit, period):
                await self.clock.sleep(wait)
            self.calls += 1
            try:
                return await send()
            except CallError as exc:
                if isinstance(exc, ThrottledError):
                    await self.store.pause(self.key, exc.retry_after or 1.0)
                delay = self.policy.next_delay(attempt, exc, self.rng)
                if delay is None:
                    raise
                self.retries += 1
                log.info(
                    "batchrecall.history_retry",
                    call=what,
                    attempt=attempt,
                    error=str(exc.code),
                    message=exc.message,
                    delay_s=round(delay, 3),
                )
                await self.clock.sleep(delay)
