"""Permit stores in this process, the lane identity that keys shared windows, and `[limits]`."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import anyio
import pytest

from batchrecall.config import LaneSettings, LimitsSettings, Secret
from batchrecall.models import LaneKey, Vendor
from batchrecall.run.clock import VirtualClock
from batchrecall.run.limits import (
    MemoryPermitStore,
    RedisPermitStore,
    lane_identity,
    open_permit_store,
    user_window_key,
    window_for_rate,
)


def max_in_window(times: list[float], width: float) -> int:
    ordered = sorted(times)
    return max((bisect_right(ordered, t + width) - i for i, t in enumerate(ordered)), default=0)


async def take(store: MemoryPermitStore, clock: VirtualClock, key: str, limit: int) -> float:
    while (wait := await store.acquire(key, limit, 1.0)) > 0:
        await clock.sleep(wait)
    return clock.now()


# -- the memory store --------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [1, 3, 10, 100])
async def test_memory_windows_never_hold_more_than_the_limit(limit: int) -> None:
    clock = VirtualClock()
    store = MemoryPermitStore(clock=clock)
    times: list[float] = []

    async def worker() -> None:
        for _ in range(3 * limit):
            times.append(await take(store, clock, "lane", limit))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(worker)
    assert len(times) == 12 * limit
    assert max_in_window(times, 1.0) == limit


@pytest.mark.anyio
async def test_memory_window_edges_are_closed() -> None:
    clock = VirtualClock()
    store = MemoryPermitStore(clock=clock)
    assert await store.acquire("lane", 1, 1.0) == 0.0
    clock.advance(1.0)  # exactly one period later: [t, t + 1] would hold two
    assert await store.acquire("lane", 1, 1.0) > 0
    clock.advance(1e-3)
    assert await store.acquire("lane", 1, 1.0) == 0.0


@pytest.mark.anyio
async def test_memory_pause_holds_only_its_key() -> None:
    clock = VirtualClock()
    store = MemoryPermitStore(clock=clock)
    await store.pause("lane", 5.0)
    await store.pause("lane", 1.0)  # a shorter pause never cuts a longer one short
    assert await store.acquire("lane", 10, 1.0) == pytest.approx(5.0, abs=1e-3)
    assert await store.acquire("other", 10, 1.0) == 0.0
    clock.advance(5.0 + 1e-3)
    assert await store.acquire("lane", 10, 1.0) == 0.0


@pytest.mark.anyio
async def test_memory_lower_limit_waits_until_the_window_fits_it() -> None:
    clock = VirtualClock()
    store = MemoryPermitStore(clock=clock)
    times = []
    for _ in range(6):
        assert await store.acquire("lane", 6, 1.0) == 0.0
        times.append(clock.now())
        clock.advance(0.1)
    times += [await take(store, clock, "lane", 3) for _ in range(3)]
    assert max_in_window(times[6:], 1.0) == 3
    # Under the new limit a window holds at most three permits, old ones included.
    assert max(bisect_right(times, t) - bisect_left(times, t - 1.0) for t in times[6:]) <= 3


@pytest.mark.anyio
async def test_memory_store_forgets_idle_windows() -> None:
    clock = VirtualClock()
    store = MemoryPermitStore(clock=clock)
    for n in range(5000):
        await store.acquire(user_window_key("easemob:o/a", f"user-{n}"), 5, 60.0)
    clock.advance(61.0)
    await store.acquire("lane", 5, 1.0)
    for n in range(5000):
        await store.acquire(user_window_key("easemob:o/a", f"late-{n}"), 5, 60.0)
    assert len(store._windows) < 6000


def test_window_for_rate() -> None:
    assert window_for_rate(50) == (50, 1.0)
    assert window_for_rate(12.5) == (12, 1.0)
    assert window_for_rate(1) == (1, 1.0)
    assert window_for_rate(0.5) == (1, 2.0)
    with pytest.raises(ValueError, match="positive"):
        window_for_rate(0)


# -- identity ----------------------------------------------------------------------------------


def _lane(vendor: Vendor, app: str, **fields: str) -> LaneSettings:
    secrets = {k: Secret(v) for k, v in fields.items() if k in ("appkey", "client_secret")}
    plain = {k: v for k, v in fields.items() if k not in secrets}
    return LaneSettings(
        lane=LaneKey(vendor=vendor, app=app),
        base_url="https://example.invalid",
        rate=10,
        credentials=plain,
        secrets=secrets,
    )


def test_identity_is_the_vendor_app_not_the_profile_name() -> None:
    easemob = {"org_name": "acme", "app_name": "chat", "client_id": "x", "client_secret": "s"}
    assert lane_identity(_lane(Vendor.EASEMOB, "default", **easemob)) == lane_identity(
        _lane(Vendor.EASEMOB, "cleanup", **{**easemob, "client_secret": "other"})
    )
    assert lane_identity(_lane(Vendor.EASEMOB, "default", **easemob)) != lane_identity(
        _lane(Vendor.EASEMOB, "default", **{**easemob, "app_name": "chat2"})
    )
    yunxin = lane_identity(_lane(Vendor.YUNXIN, "a", app_key="yx-key", app_secret="s"))
    assert yunxin == "yunxin:yx-key"
    assert lane_identity(_lane(Vendor.YUNXIN, "b", app_key="yx-key")) == yunxin


def test_goeasy_identity_never_holds_the_appkey() -> None:
    appkey = "BC-0123456789abcdef"
    identity = lane_identity(_lane(Vendor.GOEASY, "default", appkey=appkey))
    assert appkey not in identity
    assert identity.startswith("goeasy:")
    assert identity == lane_identity(_lane(Vendor.GOEASY, "other", appkey=appkey))
    assert identity != lane_identity(_lane(Vendor.GOEASY, "default", appkey=appkey + "x"))


def test_identity_parts_cannot_run_into_each_other() -> None:
    one = _lane(Vendor.EASEMOB, "d", org_name="a/b", app_name="c", client_id="x")
    two = _lane(Vendor.EASEMOB, "d", org_name="a", app_name="b/c", client_id="x")
    assert lane_identity(one) != lane_identity(two)
    assert user_window_key("i", "a:b") != user_window_key("i:a", "b")


@pytest.mark.anyio
async def test_open_permit_store_follows_the_backend() -> None:
    assert isinstance(open_permit_store(LimitsSettings()), MemoryPermitStore)
    store = open_permit_store(LimitsSettings(backend="redis", url=Secret("redis://127.0.0.1:1/0")))
    assert isinstance(store, RedisPermitStore)
    await store.aclose()
