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
import re
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

import structlog

from batchrecall.config import LaneSettings, LimitsSettings
from batchrecall.errors import LimiterUnavailableError
from batchrecall.models import Vendor
from batchrecall.run.clock import Clock, MonotonicClock

log = structlog.get_logger("batchrecall")


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window: at most `limit` permits of `key` in any `period_s` seconds."""

    key: str
    limit: int
    period_s: float


class PermitStore(Protocol):
    """Sliding windows of permits by key, and pauses that hold every permit of a key."""

    async def acquire(self, key: str, limit: int, period_s: float) -> float:
        """Take a permit in the sliding window `key` (at most `limit` in any `period_s`): 0.0 when
        granted (and recorded), else the seconds to wait before asking again. Also 'not granted'
        while `key` is paused."""
        ...

    async def acquire_all(self, windows: Sequence[Window]) -> list[float]:
        """A permit in every window at once, or in none: all 0.0 when granted (and recorded in
        each); else, window by window, the seconds until it has room (0.0 where it has). A
        refused user's window thus never spends a permit of the lane's window, nor the other
        way round."""
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
    if vendor is Vendor.RONGCLOUD:
        return f"rongcloud:{quote(settings.credentials['app_key'], safe='')}"
    if vendor is Vendor.TENCENT:
        return f"tencent:{settings.credentials['sdkappid']}"
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
        return (await self.acquire_all([Window(key, limit, period_s)]))[0]

    async def acquire_all(self, windows: Sequence[Window]) -> list[float]:
        # No await before the grant is recorded: check and record are one step for asyncio.
        now = self._clock.now()
        found = [self._wait(window, now) for window in windows]
        waits = [wait for wait, _ in found]
        if not any(waits):
            for spec, (_, window) in zip(windows, found, strict=True):
                # A sweep for a later window of this call may have dropped an idle one.
                self._windows.setdefault(spec.key, window).granted.append(now)
        return waits

    def _wait(self, spec: Window, now: float) -> tuple[float, _Window]:
        """Seconds until `spec` has room for a permit (0.0: now), and its window."""
        key, limit, period_s = spec.key, spec.limit, spec.period_s
        if limit < 1 or period_s <= 0:
            raise ValueError("a window needs limit >= 1 and period_s > 0")
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
            return max(wait, 0.0) + _EPSILON_S, window
        return 0.0, window

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

# One atomic step on the server: the server's own clock (TIME), the restart guard, the pauses and
# the windows, checked and recorded together; a client never reads and then writes. A permit is
# recorded in every window of the call or in none.
#
# The restart guard: a restarted server has lost the permits granted just before (without
# persistence every window is gone; restored from an RDB snapshot or an AOF, or after a
# failover to a replica, the windows are as they were some time before). The epoch key holds the
# server's run_id (new at every start, and another on a promoted replica) and when the first
# script under it ran; until one full period has passed since then, a window grants nothing, so
# permits granted before the restart are out of every window by the time new ones are granted.
#
# KEYS: the epoch, then each window's key and its pause key. ARGV: this permit's member, then
# each window's limit and period (us). Returns {granted, now, wait of each window (us)}.
#
# Lua numbers handed to redis.call are formatted with 14 significant digits: microsecond times
# (16 digits) go through string.format('%d') so that none is rounded.
_ACQUIRE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local function int(n) return string.format('%d', n) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or '?'
local epoch = nil
local stored = redis.call('GET', KEYS[1])
if stored then
  local id, at = string.match(stored, '^(%x+):(%d+)$')
  if id == run_id then epoch = tonumber(at) end
end
if not epoch then
  epoch = now
  redis.call('SET', KEYS[1], run_id .. ':' .. int(now))
end
local n = (#KEYS - 1) / 2
local waits = {}
local refused = false
for i = 1, n do
  local window = KEYS[2 * i]
  local limit = tonumber(ARGV[2 * i])
  local period = tonumber(ARGV[2 * i + 1])
  local wait = epoch + period - now
  local paused = redis.call('PTTL', KEYS[2 * i + 1])
  if paused > 0 and paused * 1000 > wait then wait = paused * 1000 end
  if wait <= 0 then
    wait = 0
    redis.call('ZREMRANGEBYSCORE', window, '-inf', '(' .. int(now - period))
    local count = redis.call('ZCARD', window)
    if count >= limit then
      local nth = redis.call('ZRANGE', window, count - limit, count - limit, 'WITHSCORES')
      wait = tonumber(nth[2]) + period - now + 1
    end
  end
  if wait > 0 then refused = true else wait = 0 end
  waits[i] = int(wait)
end
if refused then return {0, int(now), unpack(waits)} end
for i = 1, n do
  local period = tonumber(ARGV[2 * i + 1])
  redis.call('ZADD', KEYS[2 * i], int(now), ARGV[1])
  redis.call('PEXPIRE', KEYS[2 * i], int(math.ceil(period / 1000) + 1000))
end
return {1, int(now), unpack(waits)}
"""

_PAUSE_LUA = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', string.format('%d', ms))
end
return 1
"""

# Refusals the client has no class for, or that an older server wraps in a script error
# ("ERR Error running script ...: -OOM command not allowed ...").
_REFUSAL = re.compile(
    r"\b(OOM|NOPERM|MOVED|ASK|READONLY|TRYAGAIN|MISCONF|MASTERDOWN|CLUSTERDOWN|NOREPLICAS|BUSY)\b"
)

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
        from redis.exceptions import (
            AskError,
            NoPermissionError,
            OutOfMemoryError,
            ReadOnlyError,
            ResponseError,
            TryAgainError,
        )
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        # What "the server gives no permit" looks like: it cannot be reached (a refused or
        # broken connection, a timeout, a server still loading) or it refuses the script (out
        # of memory under `noeviction`, no permission, a cluster's MOVED, a replica during
        # failover). Each is waited out until the deadline, then stops the lane. Any other
        # error answer (a fault in the script itself) is a bug.
        self._unreachable = (RedisConnectionError, RedisTimeoutError, OSError)
        self._refusals = (
            OutOfMemoryError,
            NoPermissionError,
            AskError,
            ReadOnlyError,
            TryAgainError,
        )
        self._response_error = ResponseError
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
        return (await self.acquire_all([Window(key, limit, period_s)]))[0]

    async def acquire_all(self, windows: Sequence[Window]) -> list[float]:
        keys = [f"{self.prefix}:epoch"]
        args: list[int | str] = [next(self._members)]
        for window in windows:
            if window.limit < 1 or window.period_s <= 0:
                raise ValueError("a window needs limit >= 1 and period_s > 0")
            keys += [self._key("w", window.key), self._key("p", window.key)]
            args += [window.limit, round(window.period_s * 1_000_000)]
        granted, now_us, *waits_us = await self._call(self._acquire, keys, args)
        if int(granted):
            self.stats.grants += 1
            self.stats.granted_at = int(now_us) / 1_000_000
            return [0.0] * len(windows)
        return [max(int(w) / 1_000_000, _EPSILON_S) if int(w) > 0 else 0.0 for w in waits_us]

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
            except self._response_error as exc:
                if not isinstance(exc, self._refusals) and not _REFUSAL.search(str(exc)):
                    raise
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
