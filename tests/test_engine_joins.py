"""Where the engine meets its neighbours: an adapter's answer against its contract, the results
file (one write a call, fsync off the event loop), the token request, the shared limiter's
failures and per-user windows."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from batchrecall.errors import LimiterUnavailableError
from batchrecall.models import USER_PACING_PERIOD_S, USER_PACING_RATE, ItemOutcome, Status
from batchrecall.results.store import ResultsWriter, read_rows
from batchrecall.run import engine as engine_module
from batchrecall.run.engine import Engine
from batchrecall.run.limits import MemoryPermitStore, user_window_key
from batchrecall.run.ratelimit import WINDOW_SLACK
from batchrecall.vendors.easemob import EasemobAdapter
from tests.harness import FAST_RUN, Harness
from tests.test_engine_defects import easemob_rows
from tests.test_mixed_lanes import EASEMOB, with_event_clock
from tests.test_stops import assert_invariant, delete_rows, yunxin_rows

pytestmark = pytest.mark.anyio


# -- an answer against the adapter's contract ----------------------------------------------------


async def test_an_outcome_count_that_does_not_match_the_call_is_an_adapter_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """29 outcomes for a 30-item call: the request reached the vendor, so its items are
    `unknown` (the work may have been done), once each; the next call goes out as usual."""
    original = EasemobAdapter.send
    calls = 0

    async def one_short(self: EasemobAdapter, call: Any) -> list[ItemOutcome]:
        nonlocal calls
        calls += 1
        outcomes = await original(self, call)
        return outcomes[:-1] if calls == 1 else outcomes

    monkeypatch.setattr(EasemobAdapter, "send", one_short)
    harness = Harness(tmp_path)
    harness.write_job(easemob_rows(60))
    harness.seed()
    outcome = await harness.run(replace(FAST_RUN, concurrency=1))
    latest = assert_invariant(harness)
    assert len(latest) == 60
    assert len(outcome.rows) == 60, "one row per item"
    first = sorted(latest.values(), key=lambda r: r["call_id"])[:30]
    assert {(r["status"], r["error"], r["attempts"]) for r in first} == {
        ("unknown", "vendor-error", 1)
    }
    assert "AdapterContractError" in first[0]["message"]
    rest = [r for r in latest.values() if r not in first]
    assert {(r["status"], r["attempts"]) for r in rest} == {("ok", 1)}
    assert outcome.summary.exit_code() == 1


# -- the results file ----------------------------------------------------------------------------


class CountingFile:
    """The results file, counting what the writer does to it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.events: list[str] = []

    def write(self, text: str) -> int:
        self.events.append("write")
        written: int = self.inner.write(text)
        return written

    def flush(self) -> None:
        self.events.append("flush")
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_the_rows_of_a_call_are_one_write_and_one_flush(tmp_path: Path) -> None:
    counting: list[CountingFile] = []

    def hook(engine: Engine) -> None:
        file = CountingFile(engine.writer._file)
        engine.writer._file = file  # type: ignore[assignment]
        counting.append(file)

    harness = Harness(tmp_path)
    harness.write_job(easemob_rows(30))
    harness.seed()
    outcome = await harness.run(engine_hook=hook)
    assert len(outcome.rows) == 30
    assert {r["status"] for r in outcome.rows} == {"ok"}
    (file,) = counting
    # One write and its flush for the 30 rows; then only the syncs at the end flush.
    assert file.events[:2] == ["write", "flush"]
    assert file.events.count("write") == 1, file.events


async def test_a_slow_fsync_does_not_stall_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first fsync blocks until the next request reaches the vendor: that happens only if
    the event loop keeps running while the disk syncs."""
    monkeypatch.setattr(engine_module, "_SYNC_EVERY_S", 0.01)
    entered, released = threading.Event(), threading.Event()
    waited: list[bool] = []
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        if not waited:
            entered.set()
            waited.append(released.wait(timeout=5))
        real_fsync(fd)

    monkeypatch.setattr("batchrecall.results.store.os.fsync", slow_fsync)

    class HoldSecond(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner
            self.count = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.count += "/messages/" in request.url.path
            if self.count == 2 and not released.is_set():
                # Waits in a thread: the event loop stays free.
                assert await anyio.to_thread.run_sync(entered.wait, 5)
                released.set()
            return await self.inner.handle_async_request(request)

    harness = Harness(tmp_path, wrap_transport=HoldSecond)
    harness.write_job(easemob_rows(60))
    harness.seed()
    outcome = await harness.run(replace(FAST_RUN, concurrency=1))
    assert waited == [True], "the next request went out while the fsync was under way"
    assert {r["status"] for r in outcome.rows} == {"ok"}


async def test_a_background_fsync_survives_writes_and_close_meanwhile(tmp_path: Path) -> None:
    from tests.test_results import row

    entered, released = threading.Event(), threading.Event()
    synced: list[int] = []

    def slow_fsync(fd: int) -> None:
        entered.set()
        assert released.wait(timeout=5)
        os.fsync(fd)  # EBADF if the descriptor was closed under it
        synced.append(fd)

    path = tmp_path / "out.jsonl"
    writer = ResultsWriter(path, "jsonl", append=False, fsync=slow_fsync)
    writer.write([row("k1")])
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(writer.sync_in_thread)
        await anyio.to_thread.run_sync(entered.wait, 5)
        writer.write([row("k2")])  # no fsync on this thread: a task syncs in the background
        assert len(synced) == 0
        released.set()
    writer.close()
    assert len(synced) == 2, "the background sync, then the one at close"
    rows, torn = read_rows(path)
    assert [r["item_key"] for r in rows] == ["k1", "k2"]
    assert torn == []


def test_csv_rows_of_a_batch_are_one_write(tmp_path: Path) -> None:
    from tests.test_results import row

    path = tmp_path / "out.csv"
    writer = ResultsWriter(path, "csv", append=False)
    file = CountingFile(writer._file)
    writer._file = file  # type: ignore[assignment]
    writer.write([row(f"k{i}") for i in range(30)])
    writer.close()
    assert file.events.count("write") == 1
    read, torn = read_rows(path)
    rows = list(read)
    assert [r["item_key"] for r in rows] == [f"k{i}" for i in range(30)]
    assert torn == []
    assert {r["status"] for r in rows} == {Status.OK}


# -- per-user windows ----------------------------------------------------------------------------


def test_keyed_limiters_look_at_a_bounded_number_of_keys_per_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """6,000 users, each sending once within a minute (none idle yet): every send looks at a
    key or two, not at all of them."""
    from batchrecall.run.clock import VirtualClock
    from batchrecall.run.ratelimit import KeyedLimiters, SlidingWindowLimiter

    examined = 0
    real_idle_since = SlidingWindowLimiter.idle_since

    def counting(self: SlidingWindowLimiter, now: float) -> bool:
        nonlocal examined
        examined += 1
        return real_idle_since(self, now)

    monkeypatch.setattr(SlidingWindowLimiter, "idle_since", counting)
    clock = VirtualClock()
    limiters = KeyedLimiters(5, 60.0, clock=clock)
    users = 6_000
    for n in range(users):
        clock.advance(0.005)
        limiters.record(f"user-{n}")
    assert examined <= 2 * users
    assert len(limiters) == users, "none was idle: every window is kept"
    # A minute on, the next send drops every idle window, one look each.
    clock.advance(62.0)
    examined = 0
    limiters.record("late")
    assert len(limiters) == 1
    assert examined == users + 1


# -- the shared limiter's failures ---------------------------------------------------------------


class PausesUnavailable:
    """A shared store that grants permits, but is gone when a throttle pause is to be shared."""

    def __init__(self) -> None:
        self.granted = 0

    async def acquire(self, key: str, limit: int, period_s: float) -> float:
        self.granted += 1
        return 0.0

    async def acquire_all(self, windows: Any) -> list[float]:
        self.granted += 1
        return [0.0 for _ in windows]

    async def pause(self, key: str, seconds: float) -> None:
        raise LimiterUnavailableError("Redis unreachable")

    async def aclose(self) -> None:
        pass


async def test_a_throttle_pause_that_cannot_be_shared_stops_the_lane_not_the_run(
    tmp_path: Path,
) -> None:
    store = PausesUnavailable()

    def hook(engine: Engine) -> None:
        engine.shared = store

    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(6))
    harness.seed()
    harness.emulators.yunxin.faults.push("throttle", only_path_contains="/messages/")
    outcome = await harness.run(replace(FAST_RUN, concurrency=1), engine_hook=hook)
    latest = assert_invariant(harness)
    assert len(latest) == 6
    assert outcome.summary.stopped_lanes == {"yunxin.default": "limiter-unavailable"}
    assert outcome.summary.exit_code() == 3
    statuses = sorted((r["status"], r["error"], r["attempts"]) for r in latest.values())
    # The throttled call's items keep their answer (left to do); nothing else was sent.
    assert statuses == [("failed", "rate-limited", 1)] + [("skipped", "lane-stopped", 0)] * 5
    assert store.granted == 1


class CountingStore(MemoryPermitStore):
    """This process's windows on the test's clock, counting what the lane asked and got."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock=clock)
        self.asked: list[tuple[str, ...]] = []
        self.granted: list[tuple[str, ...]] = []

    async def acquire_all(self, windows: Any) -> list[float]:
        waits = await super().acquire_all(windows)
        keys = tuple(window.key for window in windows)
        self.asked.append(keys)
        if not any(waits):
            self.granted.append(keys)
        return waits


async def test_a_user_window_full_elsewhere_parks_that_user_only(tmp_path: Path) -> None:
    """Another process used alice's five deletes of the minute: her calls wait for her window,
    parked, while bob's and carol's go at once; no lane permit is spent on her refusals."""
    harness = Harness(tmp_path)
    clock = with_event_clock(harness)
    store = CountingStore(clock)
    identity = str(EASEMOB)
    alice = user_window_key(identity, "alice")
    period = USER_PACING_PERIOD_S * (1 + WINDOW_SLACK)
    for _ in range(USER_PACING_RATE):  # the other process's deletes, just now
        assert await store.acquire(alice, USER_PACING_RATE, period) == 0
    store.asked.clear()
    store.granted.clear()
    start = clock.now()

    def hook(engine: Engine) -> None:
        engine.shared = store

    harness.write_job(delete_rows({"alice": 2, "bob": 3, "carol": 2}))
    harness.seed()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(clock.drive)
        with anyio.fail_after(60):
            outcome = await harness.run(replace(FAST_RUN, concurrency=2), engine_hook=hook)
        tasks.cancel_scope.cancel()
    assert set(outcome.statuses().values()) == {"ok"}
    sent = {
        user: sorted(r.time - start for r in harness.requests("easemob") if f"/{user}/" in r.path)
        for user in ("alice", "bob", "carol")
    }
    assert len(sent["bob"]) == 3
    assert len(sent["carol"]) == 2
    assert max(sent["bob"] + sent["carol"]) < 5.0, "the others' work is not held by alice's window"
    assert len(sent["alice"]) == 2
    assert min(sent["alice"]) >= period, "alice waited for her window"
    # Every request had its lane permit, and a refused call took none.
    assert len(store.granted) == 7
    lane_windows = [keys for keys in store.asked if keys[0] == identity]
    assert len(lane_windows) == len(store.asked)


# -- the token request ---------------------------------------------------------------------------


def token_in_send(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lane's token is got inside the call's send (it expired while the call waited for its
    permit), not before it."""

    async def nothing(self: EasemobAdapter) -> None:
        pass

    monkeypatch.setattr(EasemobAdapter, "prepare", nothing)


async def test_a_bug_after_the_token_request_counts_no_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_in_send(monkeypatch)
    original = EasemobAdapter._fetch_token
    fetched = 0

    async def buggy(self: EasemobAdapter) -> tuple[str, float]:
        nonlocal fetched
        fetched += 1
        token = await original(self)
        if fetched == 1:
            raise KeyError("a bug after the token came")
        return token

    monkeypatch.setattr(EasemobAdapter, "_fetch_token", buggy)
    harness = Harness(tmp_path)
    harness.write_job(easemob_rows(40))
    harness.seed()
    outcome = await harness.run(replace(FAST_RUN, concurrency=1))
    latest = assert_invariant(harness)
    assert len(latest) == 40
    by_call: dict[str, set[tuple[str, str, int]]] = {}
    for r in latest.values():
        by_call.setdefault(r["call_id"], set()).add((r["status"], r["error"], r["attempts"]))
    first, second = (by_call[c] for c in sorted(by_call))
    # No item left: the call's items did not reach the vendor, whatever the token request did.
    assert first == {("failed", "vendor-error", 0)}
    assert second == {("ok", "", 1)}
    assert "token" not in str([r["message"] for r in latest.values()]).lower()
    assert [len(r.items) for r in harness.requests("easemob") if r.items] == [10]
    assert outcome.summary.statuses[Status.UNKNOWN] == 0


async def test_a_run_cancelled_during_the_token_request_leaves_its_items_unsent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C while the lane's token is being got: the call never left, so its items
    are `skipped` / `interrupted` with no attempt, left to do for --resume."""
    token_in_send(monkeypatch)
    scope = anyio.CancelScope()

    class CutAtToken(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/token"):
                scope.cancel()
                await anyio.sleep_forever()
            return await self.inner.handle_async_request(request)

    harness = Harness(tmp_path, wrap_transport=CutAtToken)
    harness.write_job(easemob_rows(10))
    harness.seed()
    with scope:
        await harness.run()
    assert scope.cancelled_caught
    latest = assert_invariant(harness)
    assert {(r["status"], r["error"], r["attempts"]) for r in latest.values()} == {
        ("skipped", "interrupted", 0)
    }
    assert len(latest) == 10
    assert not [r for r in harness.requests("easemob") if r.items]


async def test_memory_windows_taken_together_survive_a_sweep_of_idle_ones() -> None:
    """A new user's window starts a sweep of idle windows; the lane's window of the same call,
    idle too, still records the permit."""
    from batchrecall.run.clock import VirtualClock
    from batchrecall.run.limits import Window

    clock = VirtualClock()
    store = MemoryPermitStore(clock=clock)
    lane = Window("lane", 5, 1.0)
    assert await store.acquire_all([lane]) == [0.0]
    for n in range(4_100):
        assert await store.acquire(f"user-{n}", 5, 60.0) == 0.0
    clock.advance(120.0)  # everything is idle now
    assert await store.acquire_all([lane, Window("user-new", 5, 60.0)]) == [0.0, 0.0]
    for _ in range(4):
        assert await store.acquire_all([lane]) == [0.0]
    assert (await store.acquire_all([lane]))[0] > 0, "the lane's window held the first permit"
