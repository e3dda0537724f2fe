"""Injectable time: the real monotonic clock, and a virtual one for tests."""

from __future__ import annotations

import math
import time
from typing import Protocol

import anyio
import anyio.lowlevel


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_until(self, deadline: float, wake: anyio.Event) -> None:
        """Return at `deadline` (inf: never) or as soon as `wake` is set, whichever is first."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: float, wake: anyio.Event) -> None:
        with anyio.move_on_after(deadline - time.monotonic()):
            await wake.wait()


class VirtualClock:
    """Time that passes only when someone sleeps: tests run instantly and exactly."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.time += seconds
        await anyio.lowlevel.checkpoint()

    async def sleep_until(self, deadline: float, wake: anyio.Event) -> None:
        """Jumps to the deadline unless `wake` is already set; waits for `wake` only when there
        is no deadline."""
        if wake.is_set():
            await anyio.lowlevel.checkpoint()
        elif deadline == math.inf:
            await wake.wait()
        else:
            await self.sleep(deadline - self.time)

    def advance(self, seconds: float) -> None:
        self.time += seconds
