"""Rate limits that hold over every sliding window, and the lane's adaptive rate.

aiolimiter's leaky bucket lets a full bucket out at once (twice the rate in the first second) and
reads the event loop's clock directly; a lane needs a hard sliding-window bound and a clock tests
can drive, so the limiter here keeps the send times itself.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import anyio

from batchrecall.run.clock import Clock

# Slack added to every window so that network jitter cannot squeeze `rate + 1` of our requests
# into one of the vendor's 1-second windows.
WINDOW_SLACK = 0.02


class SlidingWindowLimiter:
    """At most `rate` acquisitions in any `period`-second window, evenly spaced (no burst)."""

    def __init__(
        self, rate: float, period: float = 1.0, *, clock: Clock, even: bool = True
    ) -> None:
        self._clock = clock
        self._even = even
        self._period = period * (1 + WINDOW_SLACK)
        self._lock = anyio.Lock()
        self._sent: deque[float] = deque()
        self._resume_at = -math.inf
        self.rate = rate

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if value <= 0:
            raise ValueError("rate must be positive")
        self._rate = value

    def pause_until(self, when: float) -> None:
        """Hold every acquisition until `when` (a throttle answer asked us to wait)."""
        self._resume_at = max(self._resume_at, when)

    def delay(self, now: float) -> float:
        """Seconds until the next acquisition may happen (0 if now)."""
        capacity = max(1, math.floor(self._rate))
        while self._sent and self._sent[0] <= now - self._period:
            self._sent.popleft()
        wait = self._resume_at - now
        if self._sent and self._even:
            wait = max(wait, self._sent[-1] + self._period / self._rate - now)
        if len(self._sent) >= capacity:
            wait = max(wait, self._sent[-capacity] + self._period - now)
        return max(0.0, wait)

    def record(self, now: float) -> None:
        self._sent.append(now)

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self.delay(self._clock.now())) > 0:
                await self._clock.sleep(wait)
            self.record(self._clock.now())

    def idle_since(self, now: float) -> bool:
        """True when nothing was sent within the last window (the limiter can be dropped)."""
        return not self._sent or self._sent[-1] <= now - self._period


@dataclass
class AdaptiveRate:
    """Multiplicative decrease on throttling, additive increase back to the configured rate.

    Below the rate at which the vendor last throttled us the rate climbs quickly; near it, slowly,
    so a vendor whose real limit is under the configured one sees few throttle answers.
    """

    configured: float
    current: float = 0.0
    ceiling: float | None = None
    floor: float = 0.2
    decrease: float = 0.5
    _last_change: float = 0.0

    def __post_init__(self) -> None:
        self.current = self.configured
        self.floor = min(self.floor, self.configured)

    def on_throttle(self, resume_at: float) -> float:
        """Halve the rate; it starts climbing back only once the pause is over (`resume_at`)."""
        self.ceiling = self.current
        self.current = max(self.floor, self.current * self.decrease)
        self._last_change = resume_at
        return self.current

    def on_tick(self, now: float) -> float:
        """Raise the rate by the time passed since the last change (none during a pause)."""
        if self.current >= self.configured or now <= self._last_change:
            return self.current
        elapsed = now - self._last_change
        self._last_change = now
        fast, slow = self.configured / 20, self.configured / 200
        if self.ceiling is not None and self.current < 0.8 * self.ceiling:
            # Climb fast up to 80% of the last ceiling, then slowly with the time left.
            needed = (0.8 * self.ceiling - self.current) / fast
            if elapsed <= needed:
                self.current += fast * elapsed
                return self.current
            self.current = 0.8 * self.ceiling
            elapsed -= needed
        step = fast if self.ceiling is None else slow
        self.current = min(self.configured, self.current + step * elapsed)
        if self.ceiling is not None and self.current > self.ceiling * 1.1:
            self.ceiling = None
        return self.current


class KeyedLimiters:
    """One sliding-window limiter per key (Easemob: 5 conversation deletes a minute per user)."""

    def __init__(self, rate: float, period: float, *, clock: Clock) -> None:
        self._rate = rate
        self._period = period
        self._clock = clock
        self._limiters: dict[str, SlidingWindowLimiter] = {}

    def delay(self, key: str) -> float:
        limiter = self._limiters.get(key)
        return 0.0 if limiter is None else limiter.delay(self._clock.now())

    def record(self, key: str) -> None:
        limiter = self._limiters.get(key)
        if limiter is None:
            # A window per key, not a pace: Easemob allows a user's five deletes at once.
            limiter = SlidingWindowLimiter(self._rate, self._period, clock=self._clock, even=False)
            self._limiters[key] = limiter
        limiter.record(self._clock.now())
        if len(self._limiters) > 4096:
            self._forget_idle()

    def _forget_idle(self) -> None:
        now = self._clock.now()
        for key in [k for k, lim in self._limiters.items() if lim.idle_since(now)]:
            del self._limiters[key]
