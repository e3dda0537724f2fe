"""Rate windows that several processes can share: the permit stores behind a lane's limits.

A vendor's rate limit belongs to the app key, not to one process. A `PermitStore` keeps sliding
windows by key: in this process (`MemoryPermitStore`, the default), or in Redis
(`RedisPermitStore`), where every process whose lane has the same vendor app identity takes its
permits from one window and honours the throttle pauses that any of them saw.

The Redis store fails closed: no permit is ever granted without the server's word. While Redis
is unreachable or refuses the script (out of memory, no permission), `acquire` and `pause` retry
with backoff; after `unavailable_timeout_s` they raise `LimiterUnavailableError`, which stops the
lane with its items left to do.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

import structlog

from batchrecall.config import LaneSettings, LimitsSettings
from batchrecall.errors import LimiterUnavailableError
from batchrecall.models import Vendor
from batchrecall.run.clock import Clock, MonotonicClock

log = structlog.get_logger("batchrecall")


class PermitStore(Protocol):
    """Sliding windows of permits by key, and pauses that hold every permit of a key."""

    async def acquire(self, key: str, limit: int, period_s: float) -> float:
        """Take a permit in the sliding window `key` (at most `limit` in any `period_s`): 0.0 when
        granted (and recorded), else the seconds to wait before asking again. Also 'not granted'
        while `key` is paused."""
        ...

    async def pause(self, key: str, seconds: float) -> None:
        """Hold every permit of `key` for `seconds` (a throttle answer: every process pauses)."""
        ...

    async def aclose(self) -> None: ...


# -- keys --------------------------------------------------------------------------------------


def lane_identity(settings: LaneSettings) -> str:
    """The vendor app a lane sends for: lanes of one identity share one rate limit.

    The vendor counts requests per app, whatever profile name a config gives it. A GoEasy appkey
    is the credential itself, so only a hash of it ever reaches a Redis key.
    """
    vendor = settings.lane.vendor
    if vendor is Vendor.EASEMOB:
        org, app = settings.credentials["org_name"], settings.credentials["app_name"]
        return f"easemob:{quote(org, safe='')}/{quote(app, safe='')}"
    if vendor is Vendor.GOEASY:
        digest = hashlib.sha256(settings.secret("appkey").encode()).hexdigest()[:32]
        return f"goeasy:{digest}"
    return f"yunxin:{quote(settings.credentials['app_key'], safe='')}"


def user_window_key(identity: str, username: str) -> str:
    """The window of one user's conversation deletes (Easemob: 5 a minute per user)."""
    return f"{identity}:user:{quote(username, safe='')}"


def window_for_rate(rate: float) -> tuple[int, float]:
    """A rate in requests a second as a window: `limit` permits in any `period_s` seconds.

    A fractional rate above 1 rounds down (12.5/s allows 12 in a second); a rate under 1 is one
    permit every 1/rate seconds.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    if rate >= 1:
        return math.floor(rate), 1.0
    return 1, 1.0 / rate


# -- in this process ---------------------------------------------------------------------------


class MemoryPermitStore:
    """Windows kept in this process only: what a lone run needs, nothing to install."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock or MonotonicClock()
        self._windows: dict[str, _Window] = {}
        self._paused_until: dict[str, float] = {}
        self._sweep_at = _SWEEP_AT_WINDOWS

    async def acquire(self, key: str, limit: int, period_s: float) -> float:
        if limit < 1 or period_s <= 0:
            raise ValueError("a window needs limit >= 1 and period_s > 0")
        # No await before the grant is recorded: check and record are one step for asyncio.
        now = self._clock.now()
        wait = self._paused_until.get(key, -math.inf) - now
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(period_s)
            if len(self._windows) > self._sweep_at:
                self._forget_idle(now)
        window.period_s = period_s
        granted = window.granted
        while granted and granted[0] < now - period_s:
            granted.popleft()
        full = len(granted) >= limit
        if full:
            wait = max(wait, granted[-limit] + period_s - now)
        if full or wait > 0:
            return max(wait, 0.0) + _EPSILON_S
        granted.append(now)
        return 0.0

    async def pause(self, key: str, seconds: float) -> None:
        until = self._clock.now() + seconds
        self._paused_until[key] = max(self._paused_until.get(key, -math.inf), until)

    async def aclose(self) -> None:
        self._windows.clear()
        self._paused_until.clear()

    def _forget_idle(self, now: float) -> None:
        """Windows with nothing in them any more (one per user soon adds up)."""
        for key in [k for k, w in self._windows.items() if w.idle_at(now)]:
            del self._windows[key]
        for key in [k for k, until in self._paused_until.items() if until <= now]:
            del self._paused_until[key]
        self._sweep_at = max(_SWEEP_AT_WINDOWS, 2 * len(self._windows))


@dataclass
class _Window:
    period_s: float
    granted: deque[float] = field(default_factory=deque)

    def idle_at(self, now: float) -> bool:
        return not self.granted or self.granted[-1] < now - self.period_s


_SWEEP_AT_WINDOWS = 4096


# A window is closed at both ends: a permit exactly one period after the oldest would put
# limit + 1 permits in [oldest, oldest + period], so every wait ends just past that point.
_EPSILON_S = 1e-6


# -- in Redis ----------------------------------------------------------------------------------

# One atomic step on the server: the server's own clock (TIME), the pause, the restart guard and
# the window, checked and recorded together; a client never reads and then writes.
#
# The restart guard: Redis without persistence forgets every window when it restarts, and the
# permits granted just before are then invisible. The first script run on an empty server writes
# the epoch key; until one full period has passed since the epoch, a window grants nothing, so
# permits granted before the restart are out of every window by the time new ones are granted.
#
# Lua numbers handed to redis.call are formatted with 14 significant digits: microsecond times
# (16 digits) go through string.format('%d') so that none is rounded.
_ACQUIRE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local function int(n) return string.format('%d', n) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local epoch = tonumber(redis.call('GET', KEYS[3]))
if not epoch then
  epoch = now
  redis.call('SET', KEYS[3], int(now))
end
local wait = epoch + period - now
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 and paused * 1000 > wait then wait = paused * 1000 end
if wait > 0 then return {0, int(wait), int(now)} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. int(now - period))
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], int(now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], int(math.ceil(period / 1000) + 1000))
  return {1, '0', int(now)}
end
local nth = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return {0, int(tonumber(nth[2]) + period - now + 1), int(now)}
"""

_PAUSE_LUA = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', string.format('%d', ms))
end
return 1
"""

_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 1.0
_SOCKET_TIMEOUT_S = 2.0


@dataclass
class RedisStats:
    """What the store cost: script calls answered, permits granted, time spent waiting on Redis."""

    round_trips: int = 0
    grants: int = 0
    redis_s: float = 0.0
    granted_at: float = 0.0
    """The server's time (Unix seconds) of this process's latest permit."""


@dataclass
class RedisPermitStore:
    """Windows in Redis, shared by every process that names the same key."""

    url: str
    unavailable_timeout_s: float = 30.0
    prefix: str = "batchrecall"
    clock: Clock = field(default_factory=MonotonicClock)
    rng: random.Random = field(default_factory=random.Random)
    stats: RedisStats = field(default_factory=RedisStats)

    def __post_init__(self) -> None:
        # Imported here: a run on the memory backend never loads the Redis client.
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import ResponseError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        # What "the server gives no permit" looks like: it cannot be reached (a refused or
        # broken connection, a timeout) or it refuses the script (out of memory under
        # `noeviction`, no permission, a cluster's MOVED, a server still loading, a replica
        # during failover). Each is waited out until the deadline, then stops the lane; anything
        # else is a bug.
        self._unreachable = (RedisConnectionError, RedisTimeoutError, ResponseError, OSError)
        # Retries are ours (with a deadline), not the client's: it must not hide an outage.
        self._redis = Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=_SOCKET_TIMEOUT_S,
            socket_connect_timeout=_SOCKET_TIMEOUT_S,
        )
        self._acquire = self._redis.register_script(_ACQUIRE_LUA)
        self._pause = self._redis.register_script(_PAUSE_LUA)
        self._members = (f"{uuid.uuid4().hex[:12]}:{n}" for n in itertools.count())
        self._down_since: float | None = None
        self._failures = 0

    async def acquire(self, key: str, limit: int, period_s: float) -> float:
        if limit < 1 or period_s <= 0:
            raise ValueError("a window needs limit >= 1 and period_s > 0")
        keys = [self._key("w", key), self._key("p", key), f"{self.prefix}:epoch"]
        args: list[int | str] = [limit, round(period_s * 1_000_000), next(self._members)]
        granted, wait_us, now_us = await self._call(self._acquire, keys, args)
        if int(granted):
            self.stats.grants += 1
            self.stats.granted_at = int(now_us) / 1_000_000
            return 0.0
        return max(int(wait_us) / 1_000_000, _EPSILON_S)

    async def pause(self, key: str, seconds: float) -> None:
        ms = math.ceil(seconds * 1000)
        if ms > 0:
            await self._call(self._pause, [self._key("p", key)], [ms])

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}:{kind}:{key}"

    async def _call(self, script: _Script, keys: list[str], args: list[int | str]) -> list[bytes]:
        """One script run; while Redis is unreachable, retried until the deadline, then raised."""
        while True:
            started = time.perf_counter()
            try:
                reply = await script(keys=keys, args=args)
            except self._unreachable as exc:
                await self._wait_for_server(exc)
                continue
            self.stats.round_trips += 1
            self.stats.redis_s += time.perf_counter() - started
            if self._down_since is not None:
                log.warning("batchrecall.limiter_reachable")
                self._down_since = None
            result: list[bytes] = reply
            return result

    async def _wait_for_server(self, exc: Exception) -> None:
        now = self.clock.now()
        # The exception's class only (OutOfMemoryError, NoPermissionError...): its text may
        # name the server or the user.
        error = type(exc).__name__
        if self._down_since is None:
            self._down_since, self._failures = now, 0
            log.warning("batchrecall.limiter_unreachable", error=error)
        left = self._down_since + self.unavailable_timeout_s - now
        if left <= 0:
            raise LimiterUnavailableError(
                f"the shared rate limiter (Redis) gave no permit for "
                f"{self.unavailable_timeout_s:g} s ({error}); nothing is sent without a permit"
            ) from None
        backoff = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**self._failures)
        self._failures += 1
        await self.clock.sleep(min(left, backoff * self.rng.random()))


class _Script(Protocol):
    async def __call__(
        self, keys: list[str] | None = None, args: list[int | str] | None = None
    ) -> list[bytes]: ...


def open_permit_store(settings: LimitsSettings, *, clock: Clock | None = None) -> PermitStore:
    """The store a run's lanes take their permits from, as the `[limits]` section says."""
    if settings.backend == "redis":
        assert settings.url is not None  # the config requires it for this backend
        return RedisPermitStore(
            settings.url.reveal(),
            unavailable_timeout_s=settings.unavailable_timeout_s,
            clock=clock or MonotonicClock(),
        )
    return MemoryPermitStore(clock=clock)
