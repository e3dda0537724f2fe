"""What aiolimiter does where a lane needs a sliding-window bound, measured on the real clock."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from batchrecall.run.clock import MonotonicClock
from batchrecall.run.ratelimit import SlidingWindowLimiter
from benchmarks.product import max_in_window


@dataclass(frozen=True)
class LimiterFigures:
    burst_first_second: int
    """Acquisitions in the first second of `AsyncLimiter(rate, 1)` at 50/s."""
    one_slot_first_second: int
    """The same for `AsyncLimiter(1, 1 / rate)`."""
    after_rate_change: float
    """Acquisitions a second of `AsyncLimiter(1, 1 / 10)` once `max_rate` was set to give 40/s
    (steady state: the last half second of one)."""
    fractional_max_window: int
    """The most acquisitions in any 1-second window of `AsyncLimiter(1, 1 / 2.5)`."""
    ours_first_second: int
    """`SlidingWindowLimiter(50)`: acquisitions in the first second."""
    ours_fractional_max_window: int
    """`SlidingWindowLimiter(2.5)`: the most acquisitions in any 1-second window."""


async def _times(limiter: AsyncLimiter, seconds: float) -> list[float]:
    start = time.monotonic()
    times: list[float] = []
    while time.monotonic() - start < seconds:
        async with limiter:
            times.append(time.monotonic() - start)
    return times


async def _our_times(rate: float, seconds: float) -> list[float]:
    clock = MonotonicClock()
    limiter = SlidingWindowLimiter(rate, clock=clock)
    start = time.monotonic()
    times: list[float] = []
    while time.monotonic() - start < seconds:
        while (wait := limiter.delay(clock.now())) > 0:  # as a lane waits for its permit
            await clock.sleep(wait)
        limiter.record(clock.now())
        times.append(time.monotonic() - start)
    return times


async def _measure() -> LimiterFigures:
    burst = await _times(AsyncLimiter(50, 1), 1.2)
    one_slot = await _times(AsyncLimiter(1, 1 / 50), 1.2)
    changed = AsyncLimiter(1, 1 / 10)
    await _times(changed, 0.3)
    changed.max_rate = 4  # 4 per 0.1 s: 40/s, if the limiter read it again
    after = await _times(changed, 1.0)
    fractional = await _times(AsyncLimiter(1, 1 / 2.5), 3.0)
    ours = await _our_times(50, 1.2)
    ours_fractional = await _our_times(2.5, 3.0)
    return LimiterFigures(
        burst_first_second=sum(1 for t in burst if t < 1.0),
        one_slot_first_second=sum(1 for t in one_slot if t < 1.0),
        after_rate_change=sum(1 for t in after if t >= 0.5) / 0.5,
        fractional_max_window=max_in_window(fractional),
        ours_first_second=sum(1 for t in ours if t < 1.0),
        ours_fractional_max_window=max_in_window(ours_fractional),
    )


def measure() -> LimiterFigures:
    return asyncio.run(_measure())
