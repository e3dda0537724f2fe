"""Scripted and random faults an emulator injects: 5xx answers, throttles, delays, drops."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import httpx

FaultKind = Literal["http_500", "http_502", "http_503", "code_500", "throttle", "delay", "drop"]
"""What a fault does to one request.

- `http_500`, `http_502`, `http_503`: that HTTP status in the vendor's shape; nothing is processed.
- `code_500`: Yunxin's HTTP 200 with body code 500 (elsewhere the same as `http_500`).
- `throttle`: the vendor's own throttle answer, with `Retry-After` when `retry_after` is given.
- `delay`: processed at once, answered normally after `delay_s` seconds (client timeouts).
- `drop`: processed, then the connection is dropped without an answer (an unknown outcome).
"""

FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))


class ConnectionDropped(httpx.RemoteProtocolError):
    """Raised by an emulator app for a "drop" fault, after the answer's headers were sent.

    Over a real server the connection is closed mid-answer; in process (httpx.ASGITransport) it
    reaches the client as what it is, an `httpx.RemoteProtocolError`, like a real dropped
    connection.
    """


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One fault to inject."""

    kind: FaultKind
    retry_after: float | None = None
    """Seconds for a `Retry-After` header on a "throttle" answer."""
    delay_s: float = 0.0
    """How long a "delay" fault holds the answer back."""
    only_path_contains: str | None = None
    """A scripted fault waits for a request whose path contains this text."""

    def matches(self, path: str) -> bool:
        """Whether this fault applies to a request for `path`."""
        return self.only_path_contains is None or self.only_path_contains in path


class FaultPlan:
    """Scripted faults, consumed in order one per request, then random ones at `rate`."""

    def __init__(self, *, rate: float, seed: int, random_kinds: Sequence[FaultKind]) -> None:
        self.rate = rate
        self.random_kinds = tuple(random_kinds)
        self._rng = random.Random(seed)
        self._scripted: list[Fault] = []

    def push(
        self,
        kind: FaultKind,
        count: int = 1,
        retry_after: float | None = None,
        delay_s: float = 0.0,
        *,
        only_path_contains: str | None = None,
    ) -> None:
        """Schedules `count` faults of `kind` for the next matching requests."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        fault = Fault(
            kind=kind,
            retry_after=retry_after,
            delay_s=delay_s,
            only_path_contains=only_path_contains,
        )
        self._scripted.extend([fault] * count)

    @property
    def pending(self) -> int:
        """Scripted faults not yet consumed."""
        return len(self._scripted)

    def clear(self) -> None:
        """Drops every scripted fault not yet consumed."""
        self._scripted.clear()

    def take(self, path: str) -> Fault | None:
        """The fault for the next request to `path`: the first matching scripted one, else a
        random one at the plan's rate, else None."""
        for index, fault in enumerate(self._scripted):
            if fault.matches(path):
                del self._scripted[index]
                return fault
        if self.rate > 0 and self.random_kinds and self._rng.random() < self.rate:
            return Fault(kind=self._rng.choice(self.random_kinds))
        return None
