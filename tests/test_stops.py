"""Every way a run stops, driven through the real engine against the emulators.

After each stop the invariant holds: every item of the job has exactly one latest row or is left
to do (no row), no `ok` row is followed by a worse one, the run ends, and a resume finishes the
job without sending again what was done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from batchrecall.errors import ErrorCode
from batchrecall.intake.partition import LaneSource
from batchrecall.intake.reader import read_job
from batchrecall.models import Item, LaneKey, Status, Vendor
from batchrecall.results.recorder import ProgressSink
from batchrecall.results.store import is_done, load_resume_index
from batchrecall.run.engine import Engine
from tests.harness import FAST_RUN, Harness

YUNXIN = LaneKey(vendor=Vendor.YUNXIN, app="default")
EASEMOB = LaneKey(vendor=Vendor.EASEMOB, app="default")
GOEASY = LaneKey(vendor=Vendor.GOEASY, app="default")
GOEASY_MS = 1_763_690_000_000

Stop = Callable[[], None]


def yunxin_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "vendor": "yunxin",
            "op": "recall",
            "conversation_id": "a|1|b",
            "message_server_id": str(770_000_000 + i),
        }
        for i in range(start, start + n)
    ]


def delete_rows(users: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {
            "vendor": "easemob",
            "op": "delete_conversation",
            "username": user,
            "channel": f"peer-{i}",
            "type": "chat",
            "delete_roam": True,
        }
        for user, n in users.items()
        for i in range(n)
    ]


def goeasy_row(stamps: list[int]) -> dict[str, Any]:
    return {"vendor": "goeasy", "op": "recall", "groupId": "g-1", "messages": stamps}


# -- the invariant ---------------------------------------------------------------------------


def job_keys(job: Path) -> set[str]:
    return {row.item_key for row in read_job(job)}


def keys_by_target(job: Path) -> dict[tuple[str, str], str]:
    """What the emulators log a request carrying (vendor, target) as the item it is."""
    return {
        (str(row.vendor), row.target): row.item_key
        for row in read_job(job)
        if isinstance(row, Item)
    }


def sent_keys(harness: Harness, since: int = 0) -> list[str]:
    """The items of every item request that reached the vendor (once a request)."""
    keys = keys_by_target(harness.job)
    return [
        keys[(request.vendor, target)]
        for request in harness.requests()[since:]
        for target in request.items
    ]


def rows_of(harness: Harness) -> list[dict[str, Any]]:
    if not harness.out.exists():
        return []
    return [orjson.loads(line) for line in harness.out.read_bytes().splitlines() if line]


def assert_invariant(harness: Harness) -> dict[str, dict[str, Any]]:
    """The stop invariant: an item sent has its latest row; an item the vendor never saw has a
    row that says nothing was sent, or none (left to do), or is `unknown` (cancelled on its
    way); no `ok` row is followed by another. Returns the latest row of every item that has
    one."""
    keys = job_keys(harness.job)
    latest: dict[str, dict[str, Any]] = {}
    for row in rows_of(harness):
        key = row["item_key"]
        assert key in keys, f"a row for {key}, which the job does not hold"
        before = latest.get(key)
        if (row["status"], row["error"]) == ("skipped", "duplicate"):
            if before is None:
                latest[key] = row
            continue  # a repeat of the item in the job: its row is no outcome
        if before is not None and before["status"] == Status.OK:
            pytest.fail(f"{row['target']}: ok, then {row['status']}/{row['error']}")
        latest[key] = row
    sent = set(sent_keys(harness))
    for key in sent:
        assert key in latest, f"{key} was sent and has no row"
    for key in keys - sent:
        found = latest.get(key)
        # Nothing sent: no row, or one saying so (`skipped`, `invalid`, or `failed` before the
        # request left); or `unknown`: it left, and a second stop cancelled it on its way.
        assert found is None or found["attempts"] == 0 or found["status"] == "unknown", found
    index = load_resume_index(harness.out) if harness.out.exists() else None
    for key in keys - set(latest):
        assert index is None or not index.is_done(key), "an item without a row is left to do"
    return latest


def assert_resume_finishes(harness: Harness, before: dict[str, dict[str, Any]]) -> None:
    """A resume sends exactly what is left to do, nothing done twice, and every item ends
    done."""
    done_before = {k for k, row in before.items() if is_done(row["status"], row["error"])}
    done_before -= {k for k, row in before.items() if row["error"] == "duplicate"}
    sent_before = len(harness.requests())
    outcome = asyncio_run_resume(harness)
    resumed_keys = {row["item_key"] for row in outcome}
    assert not resumed_keys & done_before
    resent = sent_keys(harness, since=sent_before)
    assert not set(resent) & done_before, "an item done before was sent again"
    latest = assert_invariant(harness)
    keys = job_keys(harness.job)
    assert set(latest) == keys
    statuses = Counter(row["status"] for row in latest.values())
    assert set(statuses) <= {"ok", "not_found", "invalid", "skipped"}, statuses
    left = {k for k in keys if k not in done_before and not k.startswith("invalid:")}
    # Everything left to do, and nothing else, went to the vendor (once, bar retries).
    assert set(resent) == {k for k in left if latest[k]["attempts"] > 0} <= left


def asyncio_run_resume(harness: Harness) -> list[dict[str, Any]]:
    offset = len(rows_of(harness))
    anyio.run(lambda: harness.run(resume=True), backend="asyncio")
    return rows_of(harness)[offset:]


# -- driving a stop --------------------------------------------------------------------------


class Trigger(ProgressSink):
    """Calls `action` from inside the run when `when(lane, status, count)` first holds."""

    def __init__(self, when: Callable[[LaneKey | None, Status, int], bool]) -> None:
        self.when = when
        self.action: Stop = lambda: None
        self.fired = False
        self.skipped = 0

    def rows_written(self, lane: LaneKey | None, status: Status, count: int) -> None:
        if status is Status.SKIPPED:
            self.skipped += count
        if not self.fired and self.when(lane, status, count):
            self.fired = True
            self.action()


async def run_with_stop(
    harness: Harness,
    arm: Callable[[Stop], None],
    *,
    second: bool,
    run: Any = FAST_RUN,
    progress: ProgressSink | None = None,
    reason: ErrorCode = ErrorCode.INTERRUPTED,
) -> Engine:
    """Run the job; `arm(stop)` wires the moment of the stop. A first stop is the first Ctrl-C
    (stop sending, let calls in flight finish); `second` adds the second (cancel everything)."""
    engines: list[Engine] = []
    scope = anyio.CancelScope()

    def stop() -> None:
        engine = engines[0]
        engine.request_stop(reason)
        if second:
            scope.cancel()

    arm(stop)

    def hook(engine: Engine) -> None:
        engines.append(engine)
        if progress is not None:
            engine.progress = progress

    with anyio.fail_after(60):  # the run ends, in every case
        with scope:
            await harness.run(run, engine_hook=hook)
    return engines[0]


def stop_after_rows(monkeypatch: pytest.MonkeyPatch, rows: int) -> Callable[[Stop], None]:
    """Arms a stop once the lanes have read `rows` items of their parts of the job (the reading
    phase: most of the job is still in the lanes' files)."""

    def arm(stop: Stop) -> None:
        real_read = LaneSource.read
        read = 0

        def reading(self: LaneSource, count: int) -> list[Item]:
            nonlocal read
            items = real_read(self, count)
            read += len(items)
            if read >= rows:
                stop()
            return items

        monkeypatch.setattr(LaneSource, "read", reading)

    return arm


class Gate(httpx.AsyncBaseTransport):
    """Holds every request until opened; tells when `holding` requests wait."""

    def __init__(self, inner: httpx.AsyncBaseTransport, holding: int) -> None:
        self.inner = inner
        self.holding = holding
        self.waiting = 0
        self.open = anyio.Event()
        self.on_full: Stop = lambda: None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/token" not in request.url.path and not self.open.is_set():
            self.waiting += 1
            if self.waiting == self.holding:
                self.on_full()
            await self.open.wait()
        return await self.inner.handle_async_request(request)


def stop_in_flight(harness: Harness, *, holding: int) -> Callable[[Stop], None]:
    """Arms a stop at the moment `holding` requests are with the vendor; the vendor then
    answers them (unless a second stop cancelled them first)."""

    def arm(stop: Stop) -> None:
        def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
            gate = Gate(inner, holding=holding)

            def full() -> None:
                stop()
                gate.open.set()

            gate.on_full = full
            return gate

        harness.wrap_transport = wrap

    return arm


# -- each phase, first and second Ctrl-C -------------------------------------------------------


@pytest.mark.parametrize("second", [False, True], ids=["first", "second"])
def test_stop_while_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second: bool) -> None:
    harness = Harness(tmp_path)
    harness.write_job([*yunxin_rows(700), {"vendor": "nope"}, *yunxin_rows(5)])
    harness.seed()
    engine = anyio.run(
        lambda: run_with_stop(harness, stop_after_rows(monkeypatch, 300), second=second),
        backend="asyncio",
    )
    monkeypatch.undo()
    latest = assert_invariant(harness)
    if not second:
        # Rows for what the lane had read; the rest of its file is left to do, without a row.
        counts = Counter((r["status"], r["error"]) for r in latest.values())
        assert counts[("skipped", "interrupted")] >= 1
        left = job_keys(harness.job) - set(latest)
        assert len(left) > 300
        assert engine.summary.left_unread == len(left)
    assert_resume_finishes(harness, latest)


@pytest.mark.parametrize("second", [False, True], ids=["first", "second"])
def test_stop_while_calls_are_queued_and_waiting_for_permits(tmp_path: Path, second: bool) -> None:
    harness = Harness(tmp_path)
    harness.set_lane(YUNXIN, rate=2.0)
    harness.write_job(yunxin_rows(40))
    harness.seed()
    trigger = Trigger(lambda lane, status, n: status is Status.OK)
    anyio.run(
        lambda: run_with_stop(
            harness, lambda stop: setattr(trigger, "action", stop), second=second, progress=trigger
        ),
        backend="asyncio",
    )
    latest = assert_invariant(harness)
    assert trigger.fired
    if not second:
        statuses = Counter(r["status"] for r in latest.values())
        assert statuses["ok"] >= 1
        assert statuses["skipped"] >= 30
        assert set(latest) == job_keys(harness.job)
    assert_resume_finishes(harness, latest)


@pytest.mark.parametrize("second", [False, True], ids=["first", "second"])
def test_stop_while_calls_are_parked_per_user(tmp_path: Path, second: bool) -> None:
    harness = Harness(tmp_path)
    harness.write_job(delete_rows({"u1": 14, "u2": 3}))
    harness.seed()
    trigger = Trigger(lambda lane, status, n: status is Status.OK)
    engine = anyio.run(
        lambda: run_with_stop(
            harness,
            lambda stop: setattr(trigger, "action", stop),
            second=second,
            progress=trigger,
            run=replace(FAST_RUN, concurrency=4),
        ),
        backend="asyncio",
    )
    latest = assert_invariant(harness)
    assert trigger.fired
    if not second:
        assert engine.lanes[EASEMOB].parked_count == 0
        assert set(latest) == job_keys(harness.job)
    assert_resume_finishes(harness, latest)


@pytest.mark.parametrize("second", [False, True], ids=["first", "second"])
def test_stop_while_calls_are_in_flight(tmp_path: Path, second: bool) -> None:
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(20))
    harness.seed()

    arm = stop_in_flight(harness, holding=4)

    anyio.run(
        lambda: run_with_stop(harness, arm, second=second, run=replace(FAST_RUN, concurrency=4)),
        backend="asyncio",
    )
    harness.wrap_transport = None
    latest = assert_invariant(harness)
    statuses = Counter((r["status"], r["error"]) for r in latest.values())
    if second:
        # Cancelled while in flight: those four may have reached the vendor; what the lane
        # held (it read its whole part of the job) gets its rows all the same.
        assert statuses == {("unknown", "interrupted"): 4, ("skipped", "interrupted"): 16}
    else:
        assert statuses == {("ok", ""): 4, ("skipped", "interrupted"): 16}
    assert_resume_finishes(harness, latest)


@pytest.mark.parametrize("second", [False, True], ids=["first", "second"])
def test_stop_during_a_split_never_rewrites_a_finished_item(tmp_path: Path, second: bool) -> None:
    harness = Harness(tmp_path)
    stamps = [GOEASY_MS + i for i in range(6)]
    harness.write_job([goeasy_row(stamps)])
    harness.seed({("goeasy", str(stamps[2])): {"absent": True}})  # refused whole, then split
    trigger = Trigger(lambda lane, status, n: status is Status.OK)
    anyio.run(
        lambda: run_with_stop(
            harness,
            lambda stop: setattr(trigger, "action", stop),
            second=second,
            progress=trigger,
            run=replace(FAST_RUN, concurrency=1),
        ),
        backend="asyncio",
    )
    latest = assert_invariant(harness)
    assert trigger.fired
    by_stamp = {r["target"]: r for r in latest.values()}
    assert by_stamp[str(stamps[0])]["status"] == "ok"
    if not second:
        assert set(latest) == job_keys(harness.job)
        assert {r["status"] for r in latest.values()} <= {"ok", "skipped"}
    assert_resume_finishes(harness, latest)


def test_an_interrupt_cuts_short_the_rows_a_halt_writes(tmp_path: Path) -> None:
    """A halt writes `halted` rows for the whole rest of the lane, a batch at a time; an
    interrupt in the middle of that ends the run, the rest left to do."""
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(5000))
    harness.seed()
    harness.emulators.yunxin.faults.push("http_500", count=1000)
    engines: list[Engine] = []

    class InterruptInTheRows(ProgressSink):
        def rows_written(self, lane: LaneKey | None, status: Status, count: int) -> None:
            if status is Status.SKIPPED:
                engines[0].request_stop(ErrorCode.INTERRUPTED)

    def hook(engine: Engine) -> None:
        engines.append(engine)
        engine.progress = InterruptInTheRows()

    run = replace(FAST_RUN, max_attempts=1, halt_min_items=5, halt_failure_rate=0.5)

    async def main() -> None:
        with anyio.fail_after(60):
            await harness.run(run, engine_hook=hook)

    anyio.run(main, backend="asyncio")
    assert engines[0].stop_reason is ErrorCode.HALTED
    latest = assert_invariant(harness)
    halted = [r for r in latest.values() if r["error"] == "halted"]
    assert 0 < len(halted) < 1000, "cut short within a few batches of the interrupt"
    assert engines[0].summary.left_unread > 3000
    harness.emulators.yunxin.faults.clear()
    assert_resume_finishes(harness, latest)


@pytest.mark.parametrize("second", [False, True], ids=["first", "second"])
def test_stop_while_a_call_waits_to_be_retried(tmp_path: Path, second: bool) -> None:
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(6))
    harness.seed()
    harness.emulators.yunxin.faults.push("http_503", count=1)
    trigger = Trigger(lambda lane, status, n: status is Status.OK)
    anyio.run(
        lambda: run_with_stop(
            harness,
            lambda stop: setattr(trigger, "action", stop),
            second=second,
            progress=trigger,
            run=replace(FAST_RUN, concurrency=1),
        ),
        backend="asyncio",
    )
    latest = assert_invariant(harness)
    statuses = Counter((r["status"], r["error"]) for r in latest.values())
    if not second:
        # The call that met the 503 waits to be retried: its last answer is its row.
        assert statuses[("failed", "vendor-unavailable")] == 1
        assert set(latest) == job_keys(harness.job)
    assert_resume_finishes(harness, latest)


def test_stop_while_a_refused_batch_is_in_flight_writes_its_parts(tmp_path: Path) -> None:
    """The answer that splits a batch comes after the stop: its parts get their rows."""
    harness = Harness(tmp_path)
    stamps = [GOEASY_MS + i for i in range(5)]
    harness.write_job([goeasy_row(stamps)])
    harness.seed({("goeasy", str(stamps[1])): {"absent": True}})

    arm = stop_in_flight(harness, holding=1)

    anyio.run(lambda: run_with_stop(harness, arm, second=False), backend="asyncio")
    harness.wrap_transport = None
    latest = assert_invariant(harness)
    assert set(latest) == job_keys(harness.job)
    assert {(r["status"], r["error"]) for r in latest.values()} == {("skipped", "interrupted")}
    assert_resume_finishes(harness, latest)


@pytest.mark.parametrize("second", [False, True], ids=["first", "second"])
def test_a_halt_writes_every_row_and_ends(tmp_path: Path, second: bool) -> None:
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(60))
    harness.seed()
    harness.emulators.yunxin.faults.push("http_500", count=1000)
    run = replace(FAST_RUN, max_attempts=1, halt_min_items=5, halt_failure_rate=0.5)
    trigger = Trigger(lambda lane, status, n: status is Status.SKIPPED)
    engine = anyio.run(
        lambda: run_with_stop(
            harness,
            lambda stop: setattr(trigger, "action", stop if second else lambda: None),
            second=second,
            progress=trigger,
            run=run,
        ),
        backend="asyncio",
    )
    assert engine.stop_reason is ErrorCode.HALTED
    latest = assert_invariant(harness)
    statuses = Counter((r["status"], r["error"]) for r in latest.values())
    assert statuses[("skipped", "halted")] > 0
    if not second:
        assert set(latest) == job_keys(harness.job)
    harness.emulators.yunxin.faults.clear()
    assert_resume_finishes(harness, latest)


def test_a_lane_stop_with_calls_parked_per_user_ends(tmp_path: Path) -> None:
    """A refused token stops the Easemob lane while its deletes wait per user; Yunxin goes on."""
    harness = Harness(tmp_path)
    harness.write_job([*delete_rows({"u1": 12, "u2": 12}), *yunxin_rows(10)])
    harness.seed()
    harness.break_secret(Vendor.EASEMOB)

    async def main() -> None:
        with anyio.fail_after(60):
            await harness.run(replace(FAST_RUN, concurrency=2))

    anyio.run(main, backend="asyncio")
    latest = assert_invariant(harness)
    assert set(latest) == job_keys(harness.job)
    easemob = Counter(
        (r["status"], r["error"], r["attempts"])
        for r in latest.values()
        if r["vendor"] == "easemob"
    )
    assert easemob == {("skipped", "lane-stopped", 0): 24}
    assert {r["status"] for r in latest.values() if r["vendor"] == "yunxin"} == {"ok"}
    tokens = [r for r in harness.requests("easemob") if r.path.endswith("/token")]
    assert len(tokens) == 1, "a refused token is asked for once"
