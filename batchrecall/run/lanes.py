"""One lane per (vendor, app): its rate limit, throttle pauses, per-key pacing and stop state."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from batchrecall.errors import CallError
from batchrecall.models import USER_PACING_PERIOD_S, USER_PACING_RATE, Call, LaneKey
from batchrecall.run.clock import Clock
from batchrecall.run.ratelimit import AdaptiveRate, KeyedLimiters, SlidingWindowLimiter
from batchrecall.vendors.base import Adapter

_MAX_PARKED = 10_000
_POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class Work:
    """A call handed to a worker; `done` is set when it finished (pacing keys wait on it)."""

    call: Call
    done: anyio.Event | None = None


@dataclass
class LaneStats:
    throttles: int = 0


@dataclass
class Lane:
    key: LaneKey
    adapter: Adapter
    clock: Clock
    rate: float
    should_stop: Callable[[], bool] = lambda: False
    stats: LaneStats = field(default_factory=LaneStats)
    fatal: CallError | None = None

    def __post_init__(self) -> None:
        self.limiter = SlidingWindowLimiter(self.rate, clock=self.clock)
        self.adaptive = AdaptiveRate(configured=self.rate)
        self.adaptive.on_tick(self.clock.now())
        self.keyed = KeyedLimiters(USER_PACING_RATE, USER_PACING_PERIOD_S, clock=self.clock)
        self._parked: dict[str, deque[Work]] = {}
        self._in_hand: dict[int, Call] = {}
        self._parked_slots = anyio.Semaphore(_MAX_PARKED)
        self.gate = anyio.Lock()
        """Held by the one worker that is next to send (see CallSender._attempt)."""

    @property
    def stopped(self) -> bool:
        return self.fatal is not None

    async def acquire(self) -> bool:
        """Wait for a send permit; False if the run or the lane stopped meanwhile."""
        while True:
            if self.should_stop() or self.stopped:
                return False
            now = self.clock.now()
            self.limiter.rate = self.adaptive.on_tick(now)
            wait = self.limiter.delay(now)
            if wait <= 0:
                self.limiter.record(now)
                return True
            await self.clock.sleep(min(wait, _POLL_S))

    async def wait_for_key(self, key: str) -> bool:
        while (wait := self.keyed.delay(key)) > 0:
            if self.should_stop() or self.stopped:
                return False
            await self.clock.sleep(min(wait, _POLL_S))
        return True

    def on_throttle(self, pause_s: float) -> None:
        """Pause the whole lane and lower its rate."""
        now = self.clock.now()
        self.stats.throttles += 1
        self.limiter.rate = self.adaptive.on_throttle(now + pause_s)
        self.limiter.pause_until(now + pause_s)

    def stop(self, error: CallError) -> None:
        if self.fatal is None:
            self.fatal = error

    async def dispatch(
        self,
        inbox: MemoryObjectReceiveStream[Call],
        work: MemoryObjectSendStream[Work],
        task_group: TaskGroup,
    ) -> None:
        """Forward calls to the workers; calls with a pacing key go one at a time per key."""
        async with inbox, work:
            async for call in inbox:
                key = self.adapter.pacing_key(call)
                if key is None or self.should_stop() or self.stopped:
                    await self._hand_over(work, Work(call))
                    continue
                await self._parked_slots.acquire()
                queue = self._parked.get(key)
                if queue is None:
                    queue = self._parked[key] = deque()
                    task_group.start_soon(self._drain_key, key, queue, work.clone())
                queue.append(Work(call, anyio.Event()))

    async def _drain_key(
        self, key: str, queue: deque[Work], work: MemoryObjectSendStream[Work]
    ) -> None:
        async with work:
            while queue:
                if not await self.wait_for_key(key):
                    break  # the run stopped: what is left here is reported by parked_calls()
                item = queue.popleft()
                self._parked_slots.release()
                await self._hand_over(work, item)
                assert item.done is not None
                await item.done.wait()
            if not queue:
                del self._parked[key]

    async def _hand_over(self, work: MemoryObjectSendStream[Work], item: Work) -> None:
        # Kept until a worker holds it: a cancelled hand-over must still be reported.
        self._in_hand[id(item.call)] = item.call
        await work.send(item)
        del self._in_hand[id(item.call)]

    def unsent_calls(self) -> list[Call]:
        """Calls no worker took yet (reported when a run is cut short)."""
        parked = [w.call for queue in self._parked.values() for w in queue]
        return parked + list(self._in_hand.values())
