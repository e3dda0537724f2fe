"""The Redis permit store when the server refuses (out of memory, no permission) or comes back
from a snapshot, against a real `redis-server` on a free loopback port."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from batchrecall.errors import ErrorCode, LimiterUnavailableError
from batchrecall.run.limits import RedisPermitStore, Window
from tests.harness import Harness
from tests.redis_server import RedisServer
from tests.test_limits_redis import max_in_window, take
from tests.test_stops import assert_invariant, yunxin_rows

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


def out_of_memory(server: RedisServer) -> None:
    """The README's `noeviction` policy with no memory left: every write is refused (OOM)."""
    with redis.Redis.from_url(server.url) as client:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1")


async def test_a_server_out_of_memory_is_limiter_unavailable(redis_server: RedisServer) -> None:
    store = RedisPermitStore(redis_server.url, unavailable_timeout_s=0.2)
    try:
        out_of_memory(redis_server)
        # The restart guard's first write (the epoch) is refused, and so is a pause.
        with pytest.raises(LimiterUnavailableError) as caught:
            await store.acquire("lane", 5, 0.2)
        assert caught.value.code == ErrorCode.LIMITER_UNAVAILABLE
        assert "OutOfMemoryError" in caught.value.message
        with pytest.raises(LimiterUnavailableError):
            await store.pause("lane", 1)
        assert store.stats.grants == 0
    finally:
        await store.aclose()


async def test_a_user_without_permission_is_limiter_unavailable(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.acl_setuser("limited", enabled=True, passwords=["+s3cret-pw"], commands=["-@all"])
    url = f"redis://limited:s3cret-pw@127.0.0.1:{redis_server.port}/0"
    store = RedisPermitStore(url, unavailable_timeout_s=0.2)
    try:
        with pytest.raises(LimiterUnavailableError) as caught:
            await store.acquire("lane", 5, 0.2)
        assert "NoPermissionError" in caught.value.message
        assert "s3cret" not in caught.value.message
        with pytest.raises(LimiterUnavailableError):
            await store.pause("lane", 1)
        assert store.stats.grants == 0
    finally:
        await store.aclose()


async def test_a_run_whose_redis_is_out_of_memory_stops_the_lane(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    out_of_memory(redis_server)
    harness = Harness(tmp_path)
    store = RedisPermitStore(redis_server.url, unavailable_timeout_s=0.5, clock=harness.clock)
    harness.write_job(yunxin_rows(6))
    harness.seed()
    try:
        outcome = await harness.run(engine_hook=lambda engine: setattr(engine, "shared", store))
    finally:
        await store.aclose()
    latest = assert_invariant(harness)
    assert {(r["status"], r["error"], r["attempts"]) for r in latest.values()} == {
        ("skipped", "lane-stopped", 0)
    }
    assert len(latest) == 6
    assert not [r for r in harness.requests("yunxin") if r.items]
    assert outcome.summary.stopped_lanes == {"yunxin.default": "limiter-unavailable"}
    assert outcome.summary.exit_code() == 3


async def test_a_server_restored_from_a_snapshot_never_exceeds_the_limit(
    redis_server: RedisServer,
) -> None:
    """The snapshot holds the restart guard's epoch and the first permit only: the permits
    granted after it are gone when the server comes back from it, so the restored window is not
    trusted until a full period has passed under the new server."""
    limit, period = 5, 1.0
    store = RedisPermitStore(redis_server.url)
    try:
        times = [await take(store, "lane", limit, period)]
        with redis.Redis.from_url(redis_server.url) as client:
            client.save()
        times += [await take(store, "lane", limit, period) for _ in range(limit - 1)]
        redis_server.kill()
        redis_server.start()  # from the same folder: the snapshot is loaded
        with redis.Redis.from_url(redis_server.url) as client:
            assert client.exists("batchrecall:epoch"), "the epoch came back with the snapshot"
        times += [await take(store, "lane", limit, period) for _ in range(limit)]
    finally:
        await store.aclose()
    assert max_in_window(times, period) <= limit
    assert times[limit] - times[limit - 1] >= 0  # the server's clock, across the restart


async def test_a_refused_user_window_spends_no_permit_of_the_lane(
    redis_server: RedisServer,
) -> None:
    lane, user = Window("lane", 5, 0.4), Window("lane:user:alice", 2, 60.0)
    store = RedisPermitStore(redis_server.url)
    try:
        with redis.Redis.from_url(redis_server.url) as client:
            # This server started two minutes ago: its restart guard is over for every window.
            run_id = client.info("server")["run_id"]
            seconds, micros = client.time()
            client.set("batchrecall:epoch", f"{run_id}:{(seconds - 120) * 1_000_000 + micros}")
        assert await store.acquire_all([lane, user]) == [0.0, 0.0]
        assert await store.acquire_all([lane, user]) == [0.0, 0.0]
        before = store.stats.grants
        lane_wait, user_wait = await store.acquire_all([lane, user])
        assert lane_wait == 0.0
        assert 59 < user_wait <= 60.0
        assert store.stats.grants == before
        with redis.Redis.from_url(redis_server.url) as client:
            assert client.zcard("batchrecall:w:lane") == 2, "the refused call took no lane permit"
            assert client.zcard("batchrecall:w:lane:user:alice") == 2
        # Another user's window has room: both are granted and recorded.
        assert await store.acquire_all([lane, Window("lane:user:bob", 2, 60.0)]) == [0.0, 0.0]
    finally:
        await store.aclose()


async def test_a_fault_in_the_script_itself_is_a_bug_not_an_outage(
    redis_server: RedisServer,
) -> None:
    """Only the server's refusals are waited out: an error of the script's own making ends the
    run as the bug it is (exit 4), instead of passing for an unavailable limiter."""
    store = RedisPermitStore(redis_server.url, unavailable_timeout_s=0.2)
    store._acquire = store._redis.register_script("return redis.call('NOSUCHCOMMAND')")
    try:
        with pytest.raises(redis.exceptions.ResponseError):
            await store.acquire("lane", 5, 0.2)
    finally:
        await store.aclose()
