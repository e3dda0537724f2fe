"""The run's single owner of work in flight: an adapter that fails never ends the run, a paused
lane never holds a healthy one's slot, the job is read once, two runs never share a results
file, a bug exits 4, and rows are fsync'd while a run waits."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.errors import LimiterUnavailableError
from batchrecall.intake import plan as plan_module
from batchrecall.intake.reader import read_job
from batchrecall.models import InvalidRow, Item
from batchrecall.results.store import ResultsLock, ResultsWriter
from batchrecall.run import engine as engine_module
from batchrecall.run.engine import Engine
from batchrecall.run.limits import Window
from batchrecall.vendors.yunxin import YunxinAdapter
from tests.harness import FAST_RUN, Harness
from tests.test_mixed_lanes import GOEASY, with_event_clock
from tests.test_over_http import CLI
from tests.test_stops import assert_invariant, yunxin_rows

GOEASY_MS = 1_763_690_000_000


def easemob_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "vendor": "easemob",
            "op": "recall",
            "msg_id": str(1_700_000_000_000_000_000 + i),
            "to": "user-b",
            "chat_type": "chat",
        }
        for i in range(n)
    ]


class Garbled(httpx.AsyncBaseTransport):
    """Answers the `nth` item request with a body that claims gzip and is not."""

    def __init__(self, inner: httpx.AsyncBaseTransport, nth: int) -> None:
        self.inner = inner
        self.nth = nth
        self.seen = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "/messages/" not in request.url.path:
            return response
        self.seen += 1
        if self.seen != self.nth:
            return response
        await response.aread()
        return httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, content=b"not gzip at all" * 4
        )


@pytest.mark.anyio
async def test_an_undecodable_answer_fails_its_items_and_the_run_goes_on(tmp_path: Path) -> None:
    harness = Harness(tmp_path, wrap_transport=lambda inner: Garbled(inner, nth=3))
    harness.write_job(yunxin_rows(8))
    harness.seed()
    outcome = await harness.run(replace(FAST_RUN, concurrency=1))
    latest = assert_invariant(harness)
    assert len(latest) == 8
    statuses = sorted((r["status"], r["error"]) for r in latest.values())
    # The request reached the vendor: whether it acted is unknown, so it is left to do.
    assert statuses == [("ok", "")] * 7 + [("unknown", "vendor-error")]
    (bad,) = [r for r in latest.values() if r["status"] == "unknown"]
    assert "DecodingError" in bad["message"]
    assert bad["attempts"] == 1
    assert outcome.summary.exit_code() == 1


@pytest.mark.anyio
async def test_an_adapter_bug_fails_its_call_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = YunxinAdapter.send
    calls = 0

    async def buggy(self: YunxinAdapter, call: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyError("a bug before anything was sent")
        return await original(self, call)

    monkeypatch.setattr(YunxinAdapter, "send", buggy)
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(5))
    harness.seed()
    await harness.run(replace(FAST_RUN, concurrency=1))
    latest = assert_invariant(harness)
    statuses = sorted((r["status"], r["error"], r["attempts"]) for r in latest.values())
    # Nothing left: the item failed for sure, with nothing sent.
    assert statuses == [("failed", "vendor-error", 0)] + [("ok", "", 1)] * 4


@pytest.mark.anyio
async def test_a_throttled_lane_does_not_hold_the_only_slot(tmp_path: Path) -> None:
    """With one slot for the whole run, a GoEasy lane paused 30 s by a throttle answer must not
    hold it: the Easemob items go out during the pause."""
    harness = Harness(tmp_path)
    clock = with_event_clock(harness)
    goeasy = [
        {"vendor": "goeasy", "op": "recall", "groupId": f"g-{g}", "messages": [GOEASY_MS + g]}
        for g in range(3)
    ]
    harness.write_job([*goeasy, *easemob_rows(90)])
    harness.seed()
    harness.set_lane(GOEASY, rate=10.0)
    harness.emulators.goeasy.faults.push("throttle", count=1, retry_after=30.0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(clock.drive)
        with anyio.fail_after(60):
            outcome = await harness.run(replace(FAST_RUN, concurrency=1))
        tasks.cancel_scope.cancel()
    assert set(outcome.statuses().values()) == {"ok"}
    throttled = next(r for r in harness.requests("goeasy") if r.status == 429)
    easemob = [r for r in harness.requests("easemob") if r.items]
    assert easemob, "easemob calls were sent"
    assert max(r.time for r in easemob) < throttled.time + 30.0


@pytest.mark.anyio
async def test_the_job_is_read_once_whatever_the_number_of_lanes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []

    def counting(
        path: Path, *, job_name: str | None = None, encoding: str = "utf-8"
    ) -> Iterator[Item | InvalidRow]:
        opened.append(path)
        return read_job(path, job_name=job_name, encoding=encoding)

    monkeypatch.setattr(plan_module, "read_job", counting)
    harness = Harness(tmp_path)
    goeasy = [{"vendor": "goeasy", "op": "recall", "groupId": "g", "messages": [GOEASY_MS]}]
    harness.write_job([*easemob_rows(3), *goeasy, *yunxin_rows(3)])
    harness.seed()
    outcome = await harness.run()
    assert len(outcome.summary.lanes) == 3
    assert opened == [harness.job]


def test_a_second_run_on_the_same_results_file_is_refused(tmp_path: Path) -> None:
    job = tmp_path / "job.jsonl"
    job.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in yunxin_rows(3)))
    out = tmp_path / "job.results.jsonl"
    out.write_text("a row the first run wrote\n")
    before = out.read_bytes()
    with ResultsLock(out):
        done = subprocess.run(
            [*CLI, "run", str(job), "--emulate", "--yes", "--no-progress", "--resume"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert str(out) in done.stderr
    assert f"process {os.getpid()}" in done.stderr
    assert out.read_bytes() == before, "the file is left untouched"
    # Released: the next run may take it.
    with ResultsLock(out):
        pass


def test_a_bug_exits_with_code_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(self: Any, *args: Any) -> None:
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(engine_module.Engine, "_open_lane", broken)
    job = tmp_path / "job.jsonl"
    job.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in yunxin_rows(2)))
    code = main(["run", str(job), "--emulate", "--yes", "--no-progress"])
    assert code == 4
    assert "internal error (RuntimeError)" in capsys.readouterr().err


@pytest.mark.anyio
async def test_rows_are_synced_while_the_run_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row written before a long wait reaches the disk during the wait, not at the end."""
    monkeypatch.setattr(engine_module, "_SYNC_EVERY_S", 0.01)
    synced = anyio.Event()
    real_sync = ResultsWriter.sync_in_thread

    async def sync_in_thread(self: ResultsWriter) -> None:
        dirty = self._dirty
        await real_sync(self)
        if dirty:
            synced.set()

    monkeypatch.setattr(ResultsWriter, "sync_in_thread", sync_in_thread)

    class HoldSecond(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner
            self.count = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.count += 1
            if self.count == 2:
                await synced.wait()  # answered only once the first row was synced
            return await self.inner.handle_async_request(request)

    harness = Harness(tmp_path, wrap_transport=HoldSecond)
    harness.write_job(yunxin_rows(2))
    harness.seed()
    with anyio.fail_after(30):
        await harness.run(replace(FAST_RUN, concurrency=1))
    assert len(assert_invariant(harness)) == 2


@pytest.mark.anyio
async def test_an_unreachable_shared_limiter_stops_the_lane_with_nothing_sent(
    tmp_path: Path,
) -> None:
    """Fail closed: no request without a permit; the lane's items are left to do."""

    class Unreachable:
        async def acquire(self, key: str, limit: int, period_s: float) -> float:
            raise LimiterUnavailableError("Redis unreachable")

        async def acquire_all(self, windows: Sequence[Window]) -> list[float]:
            raise LimiterUnavailableError("Redis unreachable")

        async def pause(self, key: str, seconds: float) -> None:
            raise AssertionError("nothing was sent, so nothing throttled")

        async def aclose(self) -> None:
            pass

    def hook(engine: Engine) -> None:
        engine.shared = Unreachable()

    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(6))
    harness.seed()
    outcome = await harness.run(engine_hook=hook)
    latest = assert_invariant(harness)
    assert {(r["status"], r["error"], r["attempts"]) for r in latest.values()} == {
        ("skipped", "lane-stopped", 0)
    }
    assert len(latest) == 6
    assert not [r for r in harness.requests("yunxin") if r.items]
    assert outcome.summary.stopped_lanes == {"yunxin.default": "limiter-unavailable"}
    assert outcome.summary.exit_code() == 3
