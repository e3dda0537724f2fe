"""Settings, clock, sliding-window counter and request log shared by the vendor emulators."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]
"""Epoch seconds; every time-dependent rule of an emulator reads this clock (tests inject one)."""


@dataclass(frozen=True, kw_only=True)
class EmulatorSettings:
    """How every emulator behaves: rate limit, latency, random faults, recall windows."""

    rate: float | None = None
    """Requests per sliding 1-second window per app (per API at Easemob); None: unlimited."""
    latency_ms: float = 0.0
    """Added to every answer."""
    latency_jitter_ms: float = 0.0
    """Each answer's latency is drawn uniformly from `latency_ms` plus or minus this (seeded)."""
    fault_rate: float = 0.0
    """Share of requests answered with a random 5xx (seeded)."""
    recall_window_s: float = 120.0
    """Easemob and Yunxin two-way recall window: 2 min by default (both vendors' docs)."""
    goeasy_recall_window_s: float = 4 * 3600.0
    """GoEasy: "最长只能撤回4小时内的消息" (client recall doc; applied to REST recall, inferred)."""
    seed: int = 0
    """Seeds the random faults."""

    def __post_init__(self) -> None:
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"rate must be a positive number or None, not {self.rate!r}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, not {self.fault_rate!r}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must not be negative, not {self.latency_ms!r}")
        if not 0 <= self.latency_jitter_ms <= self.latency_ms:
            raise ValueError("latency_jitter_ms must be between 0 and latency_ms")
        for name in ("recall_window_s", "goeasy_recall_window_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")


DEFAULT_SETTINGS = EmulatorSettings()


class SlidingWindow:
    """Admits at most `limit` events in any window of `period` seconds; None admits everything.

    Only admitted events are counted, so a client that stays under the limit is never refused.
    """

    def __init__(self, limit: int | None, period: float) -> None:
        self.limit = limit
        self.period = period
        self._admitted: deque[float] = deque()

    @classmethod
    def per_second(cls, rate: float | None) -> SlidingWindow:
        """A window for `rate` requests a second (a rate below 1: one request per 1/rate s)."""
        if rate is None:
            return cls(None, 1.0)
        if rate >= 1:
            return cls(math.floor(rate), 1.0)
        return cls(1, 1.0 / rate)

    def admit(self, now: float) -> bool:
        """Counts one event at `now` if the window has room, and says whether it had."""
        if self.limit is None:
            return True
        while self._admitted and now - self._admitted[0] >= self.period:
            self._admitted.popleft()
        if len(self._admitted) >= self.limit:
            return False
        self._admitted.append(now)
        return True


@dataclass(frozen=True, kw_only=True)
class LoggedRequest:
    """One request an emulator received, rejected ones included."""

    time: float
    vendor: str
    method: str
    path: str
    """The vendor path, percent-decoded, without the composite app's mount prefix."""
    query: Mapping[str, str]
    body: Any
    """The JSON body, or None when there was none or it did not parse."""
    status: int | None
    """The HTTP status answered; None when the connection was dropped (fault "drop")."""
    code: str | int | None
    """The vendor's code: Easemob `error`, GoEasy and Yunxin body `code`; None on success at
    Easemob and for plain-text gateway errors."""
    items: tuple[str, ...]
    """The item ids the request carried (msg_ids, timestamps, message or conversation ids)."""
    fault: str | None = None
    """The injected fault kind, if any."""
    seq: int = 0
    """Arrival order among all emulators of the process (times tie on a fake clock)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the entry."""
        return {
            "time": self.time,
            "vendor": self.vendor,
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "body": self.body,
            "status": self.status,
            "code": self.code,
            "items": list(self.items),
            "fault": self.fault,
            "seq": self.seq,
        }
