"""Rate limits (SPEC §4): the sliding-window bound, pauses, the adaptive rate, per-key pacing.

Every test drives a VirtualClock: time passes only when the limiter sleeps, so the tests are
exact and take no real time.
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass
from typing import cast

import anyio
import anyio.lowlevel
import pytest

from batchrecall.emulators.common import SlidingWindow
from batchrecall.models import LaneKey, Vendor
from batchrecall.run.clock import VirtualClock
from batchrecall.run.lanes import Lane
from batchrecall.run.ratelimit import AdaptiveRate, KeyedLimiters, SlidingWindowLimiter
from batchrecall.vendors.base import Adapter

RATES = [1.0, 2.5, 10.0, 50.0, 100.0]


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """The most acquisitions in any closed window [t, t + width] that starts at an acquisition."""
    ordered = sorted(times)
    return max((bisect_right(ordered, t + width) - i for i, t in enumerate(ordered)), default=0)


def fastest_rate(rate: float) -> float:
    """What a sliding-window bound of `rate` permits over a long run.

    A closed 1-second window can hold only a whole number of acquisitions, so a fractional rate
    (2.5) allows floor(rate) of them a second; a rate under 1 allows one every 1/rate seconds.
    """
    return rate if rate < 1 else float(math.floor(rate))


async def take(limiter: SlidingWindowLimiter, clock: VirtualClock) -> None:
    """A permit, waited for as a lane waits: sleep to its deadline, check again, record it."""
    while (wait := limiter.delay(clock.now())) > 0:
        await clock.sleep(wait)
    limiter.record(clock.now())


async def acquire_n(limiter: SlidingWindowLimiter, clock: VirtualClock, n: int) -> list[float]:
    times: list[float] = []
    for _ in range(n):
        await take(limiter, clock)
        times.append(clock.now())
    return times


async def acquire_for(
    limiter: SlidingWindowLimiter, clock: VirtualClock, seconds: float
) -> list[float]:
    """Acquire as fast as allowed; return the acquisition times within `seconds` of the start."""
    start = clock.now()
    times: list[float] = []
    while True:
        await take(limiter, clock)
        if clock.now() > start + seconds:
            return times
        times.append(clock.now())


def drive(limiter: SlidingWindowLimiter, clock: VirtualClock, n: int) -> list[float]:
    """The way a lane uses the limiter without awaiting it: ask the delay, wait, record."""
    times: list[float] = []
    for _ in range(n):
        clock.advance(limiter.delay(clock.now()))
        assert limiter.delay(clock.now()) == 0
        limiter.record(clock.now())
        times.append(clock.now())
    return times


# The sliding-window bound


@pytest.mark.anyio
@pytest.mark.parametrize("rate", RATES)
async def test_no_window_holds_more_than_rate(rate: float) -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(rate, clock=clock)
    times = await acquire_for(limiter, clock, 10.0)
    assert max_in_window(times) <= rate


@pytest.mark.anyio
@pytest.mark.parametrize("rate", RATES)
async def test_achieved_rate_is_close_to_the_bound(rate: float) -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(rate, clock=clock)
    times = await acquire_for(limiter, clock, 10.0)
    assert len(times) / 10.0 >= 0.95 * fastest_rate(rate)
    assert len(times) / 10.0 <= rate


@pytest.mark.anyio
@pytest.mark.parametrize("rate", RATES)
async def test_no_burst_at_start(rate: float) -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(rate, clock=clock)
    first = clock.now()
    await take(limiter, clock)
    assert clock.now() == first, "the first acquisition needs no wait"
    times = [first, *await acquire_n(limiter, clock, 2 * math.ceil(rate))]
    # A full bucket at start would put up to `rate` acquisitions at the very first instant.
    assert bisect_right(times, first + 1.0) <= rate
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0 / rate


@pytest.mark.parametrize("rate", RATES)
def test_delay_and_record_respect_the_window(rate: float) -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(rate, clock=clock)
    times = drive(limiter, clock, 10 * math.ceil(rate))
    assert max_in_window(times) <= rate


def test_delay_is_zero_for_a_fresh_limiter_and_positive_right_after_a_send() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(10, clock=clock)
    assert limiter.delay(clock.now()) == 0
    limiter.record(clock.now())
    assert 0 < limiter.delay(clock.now()) <= 0.2


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        SlidingWindowLimiter(rate, clock=VirtualClock())
    limiter = SlidingWindowLimiter(5, clock=VirtualClock())
    with pytest.raises(ValueError, match="positive"):
        limiter.rate = rate
    assert limiter.rate == 5


def test_idle_since() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(10, clock=clock)
    assert limiter.idle_since(clock.now())
    limiter.record(clock.now())
    assert not limiter.idle_since(clock.now() + 0.5)
    assert limiter.idle_since(clock.now() + 1.5)


# Pauses


@pytest.mark.anyio
async def test_pause_until_holds_acquisitions() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(50, clock=clock)
    await take(limiter, clock)
    resume_at = clock.now() + 7.5
    limiter.pause_until(resume_at)
    assert limiter.delay(clock.now()) == pytest.approx(7.5)
    await take(limiter, clock)
    assert clock.now() >= resume_at
    # After the pause the window and the spacing still hold.
    times = [clock.now(), *await acquire_n(limiter, clock, 100)]
    assert max_in_window(times) <= 50


def test_pause_only_lengthens() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(10, clock=clock)
    limiter.pause_until(clock.now() + 10)
    limiter.pause_until(clock.now() + 2)
    assert limiter.delay(clock.now()) == pytest.approx(10)


def test_pause_in_the_past_does_not_hold() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(10, clock=clock)
    limiter.pause_until(clock.now() - 5)
    assert limiter.delay(clock.now()) == 0


class _HookedClock(VirtualClock):
    """At the first sleep, asks `hook` to pause: a throttle arrives while an acquisition waits."""

    def __init__(self) -> None:
        super().__init__()
        self.hook: SlidingWindowLimiter | None = None
        self.pause_s = 0.0

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.hook is not None:
            limiter, self.hook = self.hook, None
            limiter.pause_until(self.now() + self.pause_s)


@pytest.mark.anyio
async def test_pause_arriving_during_a_wait_is_honoured() -> None:
    clock = _HookedClock()
    limiter = SlidingWindowLimiter(1, clock=clock)
    await take(limiter, clock)
    clock.hook, clock.pause_s = limiter, 5.0
    await take(limiter, clock)
    # The wait for the next slot (about 1 s) ended just as a 5 s pause was asked for.
    assert clock.now() >= 1000.0 + 1.0 + 5.0


# Rate changes


@pytest.mark.anyio
async def test_lowering_the_rate_takes_effect_at_once() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(50, clock=clock)
    await acquire_n(limiter, clock, 60)
    limiter.rate = 5
    after = await acquire_n(limiter, clock, 30)
    assert max_in_window(after) <= 5
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert min(gaps) >= 1 / 5


@pytest.mark.anyio
async def test_lowering_the_rate_counts_sends_made_at_the_old_rate() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(10, clock=clock)
    before = await acquire_n(limiter, clock, 10)
    limiter.rate = 5
    after = await acquire_n(limiter, clock, 10)
    everything = sorted(before + after)
    for t in everything:
        window = everything[bisect_left(everything, t) : bisect_right(everything, t + 1.0)]
        if any(s in after for s in window):
            assert len(window) <= 5, (t, window)


@pytest.mark.anyio
async def test_raising_the_rate_takes_effect_at_once() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(1, clock=clock)
    await acquire_n(limiter, clock, 3)
    limiter.rate = 20
    start = clock.now()
    after = await acquire_for(limiter, clock, 5.0)
    assert after[0] - start <= 1 / 20 * 1.1
    assert len(after) >= 0.95 * 20 * 5
    assert max_in_window(after) <= 20


# Concurrency


@pytest.mark.anyio
@pytest.mark.parametrize("rate", [2.5, 10.0, 50.0])
async def test_concurrent_tasks_share_the_window(rate: float) -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(rate, clock=clock)
    times: list[float] = []
    per_task: dict[int, int] = {}

    async def worker(number: int) -> None:
        for _ in range(25):
            await take(limiter, clock)
            times.append(clock.now())
            per_task[number] = per_task.get(number, 0) + 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for number in range(8):
            tg.start_soon(worker, number)

    assert len(times) == 200
    assert per_task == dict.fromkeys(range(8), 25)
    assert max_in_window(times) <= rate
    # Concurrency must not cost throughput either.
    assert (len(times) - 1) / (max(times) - min(times)) >= 0.95 * fastest_rate(rate)


# AdaptiveRate


def test_adaptive_starts_at_the_configured_rate() -> None:
    adaptive = AdaptiveRate(configured=50)
    assert adaptive.current == 50
    assert adaptive.on_tick(1000.0) == 50


def test_adaptive_halves_on_throttle() -> None:
    adaptive = AdaptiveRate(configured=50)
    assert adaptive.on_throttle(resume_at=1.0, sent_at=0.0) == 25
    assert adaptive.on_throttle(resume_at=3.0, sent_at=2.0) == 12.5
    assert adaptive.current == 12.5


def test_answers_to_requests_sent_before_the_lowering_lower_nothing() -> None:
    adaptive = AdaptiveRate(configured=50)
    assert adaptive.on_throttle(sent_at=0.0, resume_at=1.15) == 25
    # Requests in flight when the first answer came get the same answer: one episode.
    for sent_at in (0.02, 0.05, 0.1, 0.14):
        assert adaptive.on_throttle(sent_at=sent_at, resume_at=1.3) == 25
    # A request sent after the pause, at the lowered rate, starts a new episode.
    assert adaptive.on_throttle(sent_at=1.2, resume_at=2.35) == 12.5


@pytest.mark.anyio
async def test_a_throttle_before_the_send_counts_from_when_it_came() -> None:
    """Easemob's token request throttled: no send time, so the answer's own time decides."""
    clock = VirtualClock(start=0.0)
    key = LaneKey(vendor=Vendor.EASEMOB, app="default")
    lane = Lane(key=key, adapter=cast(Adapter, None), clock=clock, rate=50)
    clock.advance(0.15)
    lane.on_throttle(0.5, None)
    assert lane.limiter.rate == 25
    clock.advance(0.2)  # within the pause: the same episode
    lane.on_throttle(0.5, None)
    assert lane.limiter.rate == 25
    clock.advance(10.0)  # long after it: a new episode
    lane.on_throttle(0.5, None)
    assert lane.limiter.rate == 12.5


def test_the_rate_climbs_back_after_a_throttle() -> None:
    adaptive = AdaptiveRate(configured=50)
    adaptive.on_throttle(sent_at=0.0, resume_at=1.0)
    assert adaptive.on_tick(1.0) == 25, "no climb during the pause"
    assert adaptive.on_tick(3.0) > 25
    assert adaptive.on_tick(11.0) >= 0.9 * 50
    assert adaptive.on_tick(200.0) == 50


def test_a_throttle_near_the_last_ceiling_lowers_by_a_tenth() -> None:
    adaptive = AdaptiveRate(configured=50)
    adaptive.on_throttle(sent_at=0.0, resume_at=1.0)  # ceiling 50, now 25
    adaptive.on_tick(9.0)  # climbed quickly to the knee, 45
    assert adaptive.current == pytest.approx(45)
    assert adaptive.on_throttle(sent_at=9.0, resume_at=10.0) == pytest.approx(40.5)
    assert adaptive.ceiling == pytest.approx(45)


@pytest.mark.parametrize("configured", [50.0, 1.0, 0.1])
def test_adaptive_never_goes_below_the_floor(configured: float) -> None:
    adaptive = AdaptiveRate(configured=configured)
    rates = [adaptive.on_throttle(sent_at=float(n), resume_at=n + 1.0) for n in range(40)]
    floor = min(0.2, configured)
    assert min(rates) == pytest.approx(floor)
    assert all(rate >= floor for rate in rates)
    assert rates[-1] > 0


def tick_until(adaptive: AdaptiveRate, start: float, end: float, step: float) -> list[float]:
    rates: list[float] = []
    t = start
    while t < end:
        t += step
        rates.append(adaptive.on_tick(t))
    return rates


def test_adaptive_recovers_gradually_to_the_configured_rate() -> None:
    adaptive = AdaptiveRate(configured=50)
    adaptive.on_throttle(sent_at=0.0, resume_at=0.0)
    rates = tick_until(adaptive, 0.0, 120.0, 0.1)
    assert rates[9] < 0.6 * 50, "one second after a throttle the rate is still well down"
    assert all(b >= a for a, b in itertools.pairwise(rates)), "it only climbs"
    assert max(rates) == 50, "never above the configured rate"
    assert rates[-1] == 50
    reached = 0.1 * (rates.index(50) + 1)
    assert 10 < reached < 120


def test_adaptive_climbs_slower_near_the_last_ceiling() -> None:
    adaptive = AdaptiveRate(configured=50)
    adaptive.on_throttle(sent_at=0.0, resume_at=0.0)  # ceiling 50, now 25
    rates = tick_until(adaptive, 0.0, 120.0, 0.1)
    far = [b - a for a, b in itertools.pairwise(rates) if b < 0.7 * 50]
    near = [b - a for a, b in itertools.pairwise(rates) if 0.9 * 50 <= a < 0.97 * 50]
    assert far
    assert near
    assert max(near) * 5 < min(far)


def test_adaptive_tick_does_not_exceed_configured_after_a_long_gap() -> None:
    adaptive = AdaptiveRate(configured=30)
    adaptive.on_throttle(sent_at=0.0, resume_at=0.0)
    assert adaptive.on_tick(10_000.0) == 30


# KeyedLimiters (Easemob user_channel: 5 calls a minute per user)


def drive_key(limiters: KeyedLimiters, clock: VirtualClock, key: str, until: float) -> list[float]:
    times: list[float] = []
    while True:
        clock.advance(limiters.delay(key))
        if clock.now() > until:
            return times
        assert limiters.delay(key) == 0
        limiters.record(key)
        times.append(clock.now())


def test_keyed_allows_five_a_minute_per_key() -> None:
    clock = VirtualClock()
    limiters = KeyedLimiters(5, 60.0, clock=clock)
    times = drive_key(limiters, clock, "alice", clock.now() + 600)
    assert max_in_window(times, 60.0) <= 5
    assert len(times) >= 0.95 * 50


def test_keyed_does_not_hold_other_keys() -> None:
    clock = VirtualClock()
    limiters = KeyedLimiters(5, 60.0, clock=clock)
    for _ in range(5):  # a user's five a minute may go at once: a window, not a pace
        assert limiters.delay("alice") == 0
        limiters.record("alice")
    assert limiters.delay("alice") > 0
    assert limiters.delay("bob") == 0
    for _ in range(5):
        limiters.record("bob")
    assert limiters.delay("carol") == 0
    assert limiters.delay("bob") > 0


def test_keyed_forgetting_idle_keys_keeps_busy_ones() -> None:
    clock = VirtualClock()
    limiters = KeyedLimiters(5, 60.0, clock=clock)
    for n in range(4096):
        limiters.record(f"old-{n}")
    clock.advance(120)
    for _ in range(5):
        limiters.record("busy")
    for _ in range(5):
        limiters.record("one-more")  # past 4096 keys: idle ones are dropped
    assert limiters.delay("busy") > 0
    assert limiters.delay("one-more") > 0
    assert limiters.delay("old-0") == 0


# A lane under a vendor limit below its rate, on virtual time: the sliding window, the adaptive
# rate and the emulators' own window, with the lane's pause on every throttle answer.


@dataclass(frozen=True)
class Settled:
    achieved: float
    throttle_answers: int
    sent: int


def run_under_vendor_limit(
    *,
    calls: int,
    configured: float,
    vendor_limit: int,
    latency: float,
    pause: float = Adapter.default_throttle_pause_s,
) -> Settled:
    """Send `calls` requests, each retried after its throttle answer; the lane's view of time."""
    clock = VirtualClock(start=0.0)
    limiter = SlidingWindowLimiter(configured, clock=clock)
    adaptive = AdaptiveRate(configured=configured)
    vendor = SlidingWindow.per_second(vendor_limit)
    waiting = deque(range(calls))
    answers: list[tuple[float, int, int, float, bool]] = []  # (at, seq, call, sent_at, ok)
    retries: list[tuple[float, int, int]] = []
    seq = itertools.count()
    done = throttled = sent = 0
    while done < calls:
        limiter.rate = adaptive.on_tick(clock.now())
        permit_at = clock.now() + limiter.delay(clock.now()) if waiting else math.inf
        next_event = min(
            answers[0][0] if answers else math.inf, retries[0][0] if retries else math.inf
        )
        if next_event < permit_at:
            clock.time = next_event
            if retries and retries[0][0] == next_event:
                waiting.append(heapq.heappop(retries)[2])
                continue
            _, _, call, sent_at, ok = heapq.heappop(answers)
            if ok:
                done += 1
                continue
            throttled += 1
            resume_at = clock.now() + pause
            limiter.rate = adaptive.on_throttle(sent_at=sent_at, resume_at=resume_at)
            limiter.pause_until(resume_at)
            heapq.heappush(retries, (clock.now() + 0.25, next(seq), call))
            continue
        clock.time = permit_at
        limiter.record(clock.now())
        sent += 1
        ok = vendor.admit(clock.now() + latency / 2)
        heapq.heappush(
            answers, (clock.now() + latency, next(seq), waiting.popleft(), clock.now(), ok)
        )
    return Settled(achieved=calls / clock.now(), throttle_answers=throttled, sent=sent)


@pytest.mark.parametrize(
    ("configured", "vendor_limit", "seconds_of_work"),
    [(50.0, 20, 30), (50.0, 20, 120), (100.0, 80, 30), (200.0, 150, 30)],
)
def test_under_a_lower_vendor_limit_the_lane_settles_near_it(
    configured: float, vendor_limit: int, seconds_of_work: int
) -> None:
    settled = run_under_vendor_limit(
        calls=vendor_limit * seconds_of_work,
        configured=configured,
        vendor_limit=vendor_limit,
        latency=0.15,
    )
    assert settled.achieved >= 0.85 * vendor_limit
    assert settled.throttle_answers <= 0.05 * settled.sent


def test_the_pause_of_a_throttle_without_retry_after_is_short_enough_to_hold_the_rate() -> None:
    """The rate is lowered with the pause: a 1 s pause held the lane at 0.86 of the limit over
    30 s of work, the adapters' half second at 0.91, with no more throttle answers."""
    one_second = run_under_vendor_limit(
        calls=20 * 30, configured=50.0, vendor_limit=20, latency=0.15, pause=1.0
    )
    default = run_under_vendor_limit(calls=20 * 30, configured=50.0, vendor_limit=20, latency=0.15)
    assert default.achieved >= 0.9 * 20
    assert default.throttle_answers <= one_second.throttle_answers


def test_a_long_run_under_a_lower_vendor_limit_meets_few_throttle_answers() -> None:
    settled = run_under_vendor_limit(calls=20 * 300, configured=50.0, vendor_limit=20, latency=0.15)
    assert settled.achieved >= 0.9 * 20
    assert settled.throttle_answers <= 0.01 * settled.sent


# Waiting for a deadline


def test_delay_is_the_wait_to_the_next_permit() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(10, clock=clock)
    assert limiter.delay(clock.now()) == 0
    limiter.record(clock.now())
    assert limiter.delay(clock.now()) == pytest.approx(1.02 / 10)
    limiter.pause_until(clock.now() + 5)
    assert limiter.delay(clock.now()) == pytest.approx(5)


def test_a_late_send_lets_the_next_come_as_much_sooner_keeping_the_window() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(50, clock=clock)
    spacing = 1.02 / 50
    limiter.record(clock.now())
    clock.advance(spacing + 0.004)  # woken 4 ms after the deadline
    limiter.record(clock.now())
    assert limiter.delay(clock.now()) == pytest.approx(spacing - 0.004)
    clock.advance(spacing - 0.004 + spacing * 0.9)  # late by nine tenths of the spacing
    limiter.record(clock.now())
    assert limiter.delay(clock.now()) == pytest.approx(spacing * 0.1)
    # Late by more than the spacing (a pause, an idle lane): no credit at all.
    clock.advance(spacing * 0.1 + spacing * 1.5)
    limiter.record(clock.now())
    assert limiter.delay(clock.now()) == pytest.approx(spacing)


@pytest.mark.parametrize("rate", [2.5, 50.0, 200.0])
def test_late_sends_keep_the_rate_and_the_window(rate: float) -> None:
    """Every wake-up late by up to 2 ms (a busy event loop): the rate holds, no window overflows."""
    clock = VirtualClock()
    limiter = SlidingWindowLimiter(rate, clock=clock)
    lateness = itertools.cycle([0.0, 0.002, 0.0005, 0.0015])
    times: list[float] = []
    while clock.now() < 1000.0 + 20:
        clock.advance(limiter.delay(clock.now()) + next(lateness))
        limiter.record(clock.now())
        times.append(clock.now())
    assert max_in_window(times) <= rate
    assert len(times) / 20 >= 0.95 * fastest_rate(rate)
