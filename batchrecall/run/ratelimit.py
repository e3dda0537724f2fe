"""Rate limits that hold over every sliding window, and the lane's adaptive rate.

aiolimiter does not fit a lane (measured in `make bench`, see docs/benchmarks.md): its leaky
bucket lets a full bucket out at once (`AsyncLimiter(50, 1)` sent 99 requests in the first
second), a bucket of one (`AsyncLimiter(1, 1 / rate)`) keeps the rate it was built with, has no
pause for `Retry-After`, and puts 3 requests in one second at 2.5/s; and it reads the event
loop's clock, where tests drive an injected one. The limiter here keeps the send times itself.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass

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
        self._sent: deque[float] = deque()
        self._resume_at = -math.inf
        self._credit = 0.0
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
            wait = max(wait, self._sent[-1] + self._spacing() - self._credit - now)
        if len(self._sent) >= capacity:
            wait = max(wait, self._sent[-capacity] + self._period - now)
        return max(0.0, wait)

    def record(self, now: float) -> None:
        """An acquisition at `now`. One that came late (a busy event loop wakes a sleeper a
        little after its deadline) lets the next come as much sooner, up to one spacing,
        so that late wake-ups do not add up to a lower rate; the window bound is unchanged."""
        if self._sent:
            late = now - (self._sent[-1] + self._spacing() - self._credit)
            self._credit = late if 0 < late <= self._spacing() else 0.0
        self._sent.append(now)

    def _spacing(self) -> float:
        return self._period / self._rate

    def idle_since(self, now: float) -> bool:
        """True when nothing was sent within the last window (the limiter can be dropped)."""
        return not self._sent or self._sent[-1] <= now - self._period


@dataclass
class AdaptiveRate:
    """The lane's rate: lowered once per throttle episode, climbing back as time passes.

    A throttle answer lowers the rate by half, or by a tenth when it came near the rate of the
    previous throttle (the vendor's limit is then known to lie just below). Answers to requests
    sent before the last lowering belong to the same episode and change nothing. The rate then
    climbs: quickly up to 90% of the rate the vendor last refused (the ceiling), slowly above it,
    so a lane under a vendor limit below its configured rate settles just under that limit and
    meets a throttle answer only every few tens of seconds; a ceiling climbed well past (10%) is
    forgotten and the climb is quick again, up to the configured rate.
    """

    configured: float
    current: float = 0.0
    ceiling: float | None = None
    """The rate at which the vendor last throttled us, while it still bounds the climb."""
    floor: float = 0.2
    _lowered_at: float = -math.inf
    _climbed_at: float = -math.inf

    def __post_init__(self) -> None:
        self.current = self.configured
        self.floor = min(self.floor, self.configured)

    def on_throttle(self, resume_at: float, *, sent_at: float) -> float:
        """A throttle answer to a request sent at `sent_at`; the lane is paused until `resume_at`.

        The lane sends nothing while paused, so a request sent before `resume_at` of the last
        lowering was sent before that lowering: its answer lowers nothing.
        """
        if sent_at < self._lowered_at:
            return self.current
        near = self.ceiling is not None and self.current >= _NEAR * self.ceiling
        self.ceiling = self.current
        step = _NEAR_DECREASE if near else _DECREASE
        self.current = max(self.floor, self.current * step)
        self._lowered_at = self._climbed_at = resume_at
        return self.current

    def on_tick(self, now: float) -> float:
        """The rate at `now`: raised by the time passed since the last change (none in a pause)."""
        if self.current >= self.configured or now <= self._climbed_at:
            return self.current
        elapsed, self._climbed_at = now - self._climbed_at, now
        fast = self.configured * _FAST_CLIMB
        if self.ceiling is None:
            self.current = min(self.configured, self.current + fast * elapsed)
            return self.current
        knee = _KNEE * self.ceiling
        if self.current < knee:
            needed = (knee - self.current) / fast
            if elapsed <= needed:
                self.current += fast * elapsed
                return self.current
            self.current, elapsed = knee, elapsed - needed
        self.current = min(self.configured, self.current + self.ceiling * _SLOW_CLIMB * elapsed)
        if self.current > self.ceiling * _FORGET:
            self.ceiling = None
        return self.current


# Lowering: by half far from the last ceiling, by a tenth within 15% of it.
_DECREASE = 0.5
_NEAR_DECREASE = 0.9
_NEAR = 0.7
# Climbing, per second: 5% of the configured rate up to the knee (90% of the ceiling), then
# 0.2% of the ceiling; a ceiling passed by 10% is forgotten.
_FAST_CLIMB = 0.05
_KNEE = 0.9
_SLOW_CLIMB = 0.002
_FORGET = 1.1


class KeyedLimiters:
    """One sliding-window limiter per key (Easemob: 5 conversation deletes a minute per user).

    Keys are kept in the order of their latest send, so the idle ones (nothing sent within a
    window) are all at the front: each send looks at the oldest key or two and drops those that
    went idle, whatever the number of users (O(1) amortized).
    """

    def __init__(self, rate: float, period: float, *, clock: Clock) -> None:
        self._rate = rate
        self._period = period
        self._clock = clock
        self._limiters: OrderedDict[str, SlidingWindowLimiter] = OrderedDict()

    def __len__(self) -> int:
        return len(self._limiters)

    def delay(self, key: str) -> float:
        limiter = self._limiters.get(key)
        return 0.0 if limiter is None else limiter.delay(self._clock.now())

    def record(self, key: str) -> None:
        now = self._clock.now()
        limiter = self._limiters.get(key)
        if limiter is None:
            # A window per key, not a pace: Easemob allows a user's five deletes at once.
            limiter = SlidingWindowLimiter(self._rate, self._period, clock=self._clock, even=False)
            self._limiters[key] = limiter
        else:
            self._limiters.move_to_end(key)
        limiter.record(now)
        self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        limiters = self._limiters
        while limiters:
            key, oldest = next(iter(limiters.items()))
            if not oldest.idle_since(now):
                return
            del limiters[key]
