"""One lane per (vendor, app): the work it holds, its rate limit, throttle pauses and pacing.

A lane's work is in exactly one place at a time: queued in its backlog (or a split part waiting
in front of it), parked behind a per-user window, waiting for a retry, in hand (its permit or a
concurrency slot is being waited for) or in flight. The engine moves it between them.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio

from batchrecall.errors import CallError
from batchrecall.models import USER_PACING_PERIOD_S, USER_PACING_RATE, Call, LaneKey
from batchrecall.run.backlog import Backlog
from batchrecall.run.clock import Clock
from batchrecall.run.limits import PermitStore, Window, user_window_key, window_for_rate
from batchrecall.run.ratelimit import (
    WINDOW_SLACK,
    AdaptiveRate,
    KeyedLimiters,
    SlidingWindowLimiter,
)
from batchrecall.vendors.base import Adapter

MAX_PARKED = 10_000


@dataclass(eq=False)
class Work:
    """A call on its way, with what happened to it so far (kept across retries and splits)."""

    call: Call
    attempts: int = 0
    """Requests that reached the vendor carrying these items (the results' `attempts`)."""
    tries: int = 0
    """Every try, reached or not: what `max_attempts` limits."""
    last_error: CallError | None = None
    token_refreshed: bool = False
    not_before: float = 0.0
    pacing: str | None = None
    """The per-user window this call counts against (Easemob conversation deletes)."""
    holds_key: bool = False
    """True while this work owns its pacing key (one call of a user at a time)."""
    sent_at: float = 0.0


@dataclass
class LaneStats:
    throttles: int = 0


@dataclass(eq=False)
class Lane:
    key: LaneKey
    adapter: Adapter
    clock: Clock
    rate: float
    stats: LaneStats = field(default_factory=LaneStats)
    fatal: CallError | None = None
    input_done: bool = False
    """The reader will add nothing more (the job is read and the planner flushed)."""
    shared: PermitStore | None = None
    """Where lanes of one vendor app in several processes share their windows (Redis)."""
    identity: str = ""
    """The vendor app's identity in the shared store."""

    def __post_init__(self) -> None:
        self.limiter = SlidingWindowLimiter(self.rate, clock=self.clock)
        self.adaptive = AdaptiveRate(configured=self.rate)
        self.adaptive.on_tick(self.clock.now())
        self.keyed = KeyedLimiters(USER_PACING_RATE, USER_PACING_PERIOD_S, clock=self.clock)
        self.backlog = Backlog(self.key)
        self.front: deque[Work] = deque()
        self.retries: list[tuple[float, int, Work]] = []
        self.parked: dict[str, deque[Work]] = {}
        self.parked_count = 0
        self._parked_ready: list[tuple[float, int, str]] = []
        self._held_until: dict[str, float] = {}
        """Users whose shared window refused a call: until when it is full."""
        self.busy_keys: set[str] = set()
        self.in_hand: Work | None = None
        self.in_flight = 0
        self.wake = anyio.Event()
        self.halted = anyio.Event()
        """Set when the lane or the run stops: waits for a permit or a slot end at once."""
        self.slot_wait: anyio.CancelScope | None = None
        self._order = itertools.count()
        self._shared_pause = 0.0

    @property
    def stopped(self) -> bool:
        return self.fatal is not None

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing in flight, and nothing more will come."""
        return (
            self.input_done
            and self.in_flight == 0
            and self.in_hand is None
            and not self.front
            and not self.retries
            and not self.parked_count
            and len(self.backlog) == 0
        )

    def new_wake(self) -> anyio.Event:
        """A fresh event that the next `notify()` sets (take it before looking for work)."""
        self.wake = anyio.Event()
        return self.wake

    def notify(self) -> None:
        self.wake.set()

    # -- work in ---------------------------------------------------------------------------

    def add_retry(self, work: Work) -> None:
        heapq.heappush(self.retries, (work.not_before, next(self._order), work))
        self.notify()

    def add_front(self, work: Work) -> None:
        self.front.append(work)
        self.notify()

    # -- work out --------------------------------------------------------------------------

    def next_work(self, now: float) -> tuple[Work | None, float]:
        """The next work ready to send, or None and when something may be ready (inf: when
        something new arrives)."""
        while self.retries and self.retries[0][0] <= now:
            _, _, work = heapq.heappop(self.retries)
            wait = self._key_delay(work.pacing, now) if work.pacing is not None else 0.0
            if wait > 0:
                work.not_before = now + wait
                heapq.heappush(self.retries, (work.not_before, next(self._order), work))
                continue
            return work, now
        while self._parked_ready and self._parked_ready[0][0] <= now:
            _, _, key = heapq.heappop(self._parked_ready)
            queue = self.parked.get(key)
            if not queue or key in self.busy_keys:
                continue  # stale: the key's release pushes it again
            wait = self._key_delay(key, now)
            if wait > 0:
                self._schedule_key(key, now + wait)
                continue
            work = queue.popleft()
            self.parked_count -= 1
            if not queue:
                del self.parked[key]
            self.busy_keys.add(key)
            work.holds_key = True
            return work, now
        while self.parked_count < MAX_PARKED and (pulled := self._pull()) is not None:
            pacing = pulled.pacing
            if pacing is None:
                return pulled, now
            if (
                pacing in self.busy_keys
                or pacing in self.parked
                or self._key_delay(pacing, now) > 0
            ):
                self._park(pacing, pulled, now)
                continue
            self.busy_keys.add(pacing)
            pulled.holds_key = True
            return pulled, now
        deadlines = [math.inf]
        if self.retries:
            deadlines.append(self.retries[0][0])
        if self._parked_ready:
            deadlines.append(self._parked_ready[0][0])
        return None, min(deadlines)

    def _pull(self) -> Work | None:
        if self.front:
            return self.front.popleft()
        call = self.backlog.pop()
        if call is None:
            return None
        return Work(call=call, pacing=self.adapter.pacing_key(call))

    def _park(self, key: str, work: Work, now: float) -> None:
        queue = self.parked.get(key)
        if queue is None:
            queue = self.parked[key] = deque()
            if key not in self.busy_keys:
                self._schedule_key(key, now + self._key_delay(key, now))
        queue.append(work)
        self.parked_count += 1

    def _schedule_key(self, key: str, when: float) -> None:
        heapq.heappush(self._parked_ready, (when, next(self._order), key))

    def release_key(self, work: Work) -> None:
        """The work is done with its pacing key: the key's next parked call may go."""
        if not work.holds_key or work.pacing is None:
            return
        work.holds_key = False
        self.busy_keys.discard(work.pacing)
        if work.pacing in self.parked:
            now = self.clock.now()
            self._schedule_key(work.pacing, now + self._key_delay(work.pacing, now))
            self.notify()

    def take_everything(self) -> Iterator[Work]:
        """Every work not in flight, emptied out of the lane (the run or the lane stopped)."""
        if self.in_hand is not None:
            work, self.in_hand = self.in_hand, None
            yield work
        while self.front:
            yield self.front.popleft()
        while self.retries:
            yield heapq.heappop(self.retries)[2]
        for queue in self.parked.values():
            yield from queue
        self.parked.clear()
        self.parked_count = 0
        self._parked_ready.clear()
        self._held_until.clear()
        for call in self.backlog.drain():
            yield Work(call=call)

    # -- permits ---------------------------------------------------------------------------

    def permit_delay(self, now: float) -> float:
        """Seconds until this lane may send its next request."""
        self.limiter.rate = self.adaptive.on_tick(now)
        return self.limiter.delay(now)

    async def shared_permit(self, work: Work) -> float:
        """With a shared store: a permit of the vendor app's window, and for a paced call of
        its user's window too, taken together or not at all; 0 when granted, else the seconds to
        wait. A call whose user's window is full (other processes used it) is parked until the
        window has room: the lane goes on with other users' work, and its permit is not spent."""
        if self.shared is None:
            return 0.0
        limit, period = window_for_rate(self.limiter.rate)
        lane = Window(self.identity, limit, period * (1 + WINDOW_SLACK))
        if work.pacing is None:
            return await self.shared.acquire(lane.key, lane.limit, lane.period_s)
        user = Window(
            user_window_key(self.identity, work.pacing),
            USER_PACING_RATE,
            USER_PACING_PERIOD_S * (1 + WINDOW_SLACK),
        )
        lane_wait, user_wait = await self.shared.acquire_all([lane, user])
        if user_wait > 0:
            self._park_refused(work, work.pacing, user_wait)
        return max(lane_wait, user_wait)

    def _park_refused(self, work: Work, key: str, wait: float) -> None:
        """The work goes back in front of its user's parked calls until the user's window
        (kept elsewhere) has room."""
        now = self.clock.now()
        if self.in_hand is work:
            self.in_hand = None
        if work.holds_key:
            work.holds_key = False
            self.busy_keys.discard(key)
        self._held_until[key] = max(self._held_until.get(key, 0.0), now + wait)
        queue = self.parked.get(key)
        if queue is None:
            queue = self.parked[key] = deque()
        queue.appendleft(work)
        self.parked_count += 1
        self._schedule_key(key, now + wait)
        self.notify()

    def _key_delay(self, key: str, now: float) -> float:
        """Seconds until the user's window has room: this process's own sends, and what the
        shared store said when it refused."""
        wait = self.keyed.delay(key)
        until = self._held_until.get(key)
        if until is not None:
            if until <= now:
                del self._held_until[key]
            else:
                wait = max(wait, until - now)
        return wait

    async def share_pause(self) -> None:
        """Tell the other processes of a throttle pause this lane took."""
        pause, self._shared_pause = self._shared_pause, 0.0
        if self.shared is not None and pause > 0:
            await self.shared.pause(self.identity, pause)

    def record_send(self, work: Work, now: float) -> None:
        self.limiter.record(now)
        if work.pacing is not None:
            self.keyed.record(work.pacing)
        work.sent_at = now

    def on_throttle(self, pause_s: float, sent_at: float | None) -> None:
        """Pause the whole lane; lower its rate once per throttle episode (the answer to a
        request sent before the last lowering lowers nothing). Without `sent_at` (throttled before
        it was sent) the latest time it can count from is now."""
        now = self.clock.now()
        resume_at = now + pause_s
        self.stats.throttles += 1
        sent = now if sent_at is None else sent_at
        self.limiter.rate = self.adaptive.on_throttle(resume_at, sent_at=sent)
        self.limiter.pause_until(resume_at)
        self._shared_pause = max(self._shared_pause, pause_s)

    def stop(self, error: CallError) -> None:
        """A lane-stopping answer: nothing more is sent in this lane."""
        if self.fatal is None:
            self.fatal = error
        self.halt()

    def halt(self) -> None:
        """Stop sending: the lane's waits end now (the run stopped, or the lane did)."""
        self.halted.set()
        if self.slot_wait is not None:
            self.slot_wait.cancel()
        self.notify()

    def close(self) -> None:
        self.backlog.close()
