"""The Redis permit store against a real `redis-server` on a free loopback port.

Several processes share one window; Redis is killed and restarted under them; the store fails
closed while it is gone. Times are the server's own (the store reports the server time of each
permit), and the tests assert only on the windows those times form, never on durations.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from bisect import bisect_right
from pathlib import Path

import anyio
import pytest
import redis

from batchrecall.config import LaneSettings, Secret
from batchrecall.errors import ErrorCode, LimiterUnavailableError
from batchrecall.models import LaneKey, Vendor
from batchrecall.run.limits import RedisPermitStore, lane_identity
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parent.parent


def max_in_window(times: list[float], width: float) -> int:
    """The most permits in any closed window [t, t + width] (one starting at each permit)."""
    ordered = sorted(times)
    return max((bisect_right(ordered, t + width) - i for i, t in enumerate(ordered)), default=0)


async def take(store: RedisPermitStore, key: str, limit: int, period_s: float) -> float:
    """Wait for one permit; the server's time of it."""
    while True:
        wait = await store.acquire(key, limit, period_s)
        if wait == 0:
            return store.stats.granted_at
        await anyio.sleep(wait)


# -- one process -------------------------------------------------------------------------------


async def test_a_fresh_server_grants_nothing_for_one_period(redis_server: RedisServer) -> None:
    store = RedisPermitStore(redis_server.url)
    try:
        first = await store.acquire("lane", 5, 0.3)
        assert 0 < first <= 0.3  # the restart guard: what came before the server is unknown
        times = [await take(store, "lane", 5, 0.3) for _ in range(12)]
        assert max_in_window(times, 0.3) == 5
        assert store.stats.grants == 12
    finally:
        await store.aclose()


async def test_a_server_that_lost_its_data_waits_a_full_period_again(
    redis_server: RedisServer,
) -> None:
    store = RedisPermitStore(redis_server.url)
    try:
        await take(store, "lane", 5, 0.3)
        with redis.Redis.from_url(redis_server.url) as client:
            client.flushall()
        assert await store.acquire("lane", 5, 0.3) > 0
        assert await store.acquire("another-lane", 5, 0.3) > 0
    finally:
        await store.aclose()


async def test_a_pause_holds_every_process_of_the_key(redis_server: RedisServer) -> None:
    first = RedisPermitStore(redis_server.url)
    second = RedisPermitStore(redis_server.url)
    try:
        await take(first, "lane", 5, 0.2)
        await take(second, "other", 5, 0.2)
        await first.pause("lane", 30)
        await first.pause("lane", 1)  # a shorter pause never cuts a longer one short
        assert await second.acquire("lane", 5, 0.2) > 29
        assert await second.acquire("other", 5, 0.2) == 0.0
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_lower_limit_waits_until_the_window_fits_it(redis_server: RedisServer) -> None:
    store = RedisPermitStore(redis_server.url)
    try:
        times = [await take(store, "lane", 6, 0.4) for _ in range(6)]
        times += [await take(store, "lane", 3, 0.4) for _ in range(3)]
        assert max_in_window(times[6:], 0.4) <= 3
        assert max_in_window(times, 0.4) <= 6
        assert times[6] - times[3] >= 0.4  # the fourth-newest permit had to leave the window
    finally:
        await store.aclose()


async def test_no_secret_reaches_a_redis_key(redis_server: RedisServer) -> None:
    appkey = "BC-secret-appkey-3d9f0a"
    settings = LaneSettings(
        lane=LaneKey(vendor=Vendor.GOEASY, app="default"),
        base_url="https://rest-hz.goeasy.io",
        rate=10,
        secrets={"appkey": Secret(appkey)},
    )
    store = RedisPermitStore(redis_server.url)
    try:
        identity = lane_identity(settings)
        await take(store, identity, 5, 0.2)
        await store.pause(identity, 1)
    finally:
        await store.aclose()
    with redis.Redis.from_url(redis_server.url) as client:
        keys = [key.decode() for key in client.keys("*")]
        values = [client.dump(key) or b"" for key in keys]
    assert any(identity in key for key in keys)
    assert not any(appkey in key for key in keys)
    assert not any(appkey.encode() in value for value in values)


# -- failing closed ----------------------------------------------------------------------------


async def test_an_unreachable_server_is_limiter_unavailable_after_the_timeout(
    redis_server: RedisServer,
) -> None:
    store = RedisPermitStore(redis_server.url, unavailable_timeout_s=0.3)
    try:
        await take(store, "lane", 5, 0.2)
        redis_server.kill()
        with pytest.raises(LimiterUnavailableError) as caught:
            await store.acquire("lane", 5, 0.2)
        assert caught.value.code == ErrorCode.LIMITER_UNAVAILABLE
        assert "127.0.0.1" not in str(caught.value)
        with pytest.raises(LimiterUnavailableError):
            await store.pause("lane", 1)
        redis_server.start()
        # Back again: the first answer is the restart guard, then permits flow.
        assert await store.acquire("lane", 5, 0.2) > 0
        await take(store, "lane", 5, 0.2)
    finally:
        await store.aclose()


async def test_a_server_that_never_answers_is_limiter_unavailable(tmp_path: Path) -> None:
    from tests.redis_server import free_port

    store = RedisPermitStore(f"redis://127.0.0.1:{free_port()}/0", unavailable_timeout_s=0.2)
    try:
        with pytest.raises(LimiterUnavailableError):
            await store.acquire("lane", 5, 1.0)
        assert store.stats.grants == 0
    finally:
        await store.aclose()


# -- several processes -------------------------------------------------------------------------


class Hammers:
    """Processes that each take `count` permits from one window, started together."""

    def __init__(self, server: RedisServer, n: int, *, limit: int, period_s: float, count: int):
        args = [server.url, "lane", str(limit), str(period_s), str(count), "20"]
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.limits_hammer", *args],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(n)
        ]
        self.lines: list[list[str]] = [[] for _ in range(n)]
        self._seen = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(i,), daemon=True) for i in range(n)
        ]
        for reader in self._readers:
            reader.start()
        with redis.Redis.from_url(server.url) as client:
            for _ in range(n):
                assert client.blpop(["hammer:ready"], timeout=60) is not None
            client.rpush("hammer:go", *["1"] * n)

    def _read(self, i: int) -> None:
        stream = self.processes[i].stdout
        assert stream is not None
        for line in stream:
            with self._seen:
                self.lines[i].append(line.strip())
                self._seen.notify_all()

    def wait_for_permits(self, n: int) -> None:
        with self._seen:
            assert self._seen.wait_for(lambda: sum(map(len, self.lines)) >= n, timeout=60)

    def finish(self) -> list[list[float]]:
        codes = [process.wait(timeout=120) for process in self.processes]
        for reader in self._readers:
            reader.join()
        assert codes == [0] * len(codes), self.lines
        return [[float(line) for line in lines] for lines in self.lines]


def test_three_processes_share_one_window(redis_server: RedisServer) -> None:
    limit, period = 10, 0.5
    hammers = Hammers(redis_server, 3, limit=limit, period_s=period, count=15)
    per_process = hammers.finish()
    times = [t for permits in per_process for t in permits]
    assert [len(permits) for permits in per_process] == [15, 15, 15]
    assert max_in_window(times, period) == limit


def test_a_redis_restart_mid_run_never_lets_a_window_exceed_the_limit(
    redis_server: RedisServer,
) -> None:
    limit, period = 10, 0.5
    hammers = Hammers(redis_server, 3, limit=limit, period_s=period, count=20)
    hammers.wait_for_permits(25)  # the window is full and busy
    redis_server.kill()
    redis_server.start()
    per_process = hammers.finish()
    times = [t for permits in per_process for t in permits]
    assert [len(permits) for permits in per_process] == [20, 20, 20]  # nothing lost, all done
    assert max_in_window(times, period) == limit
