"""The run's flow from the job to the lanes: every lane starts at once whatever the order of the
rows, each job file is parsed once, a stop does not read the rest of the job, and no request
leaves after a stop."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.errors import CallError, ErrorCode, LimiterUnavailableError
from batchrecall.intake import reader as reader_module
from batchrecall.intake.partition import LaneSource
from batchrecall.models import Item, LaneKey, Status, Vendor
from batchrecall.results.recorder import LaneState, ProgressSink
from batchrecall.run.engine import Engine
from batchrecall.run.lanes import Lane, Work
from batchrecall.run.limits import Window
from batchrecall.run.sender import FollowUp
from tests.harness import FAST_RUN, Harness
from tests.test_mixed_lanes import with_event_clock
from tests.test_stops import (
    assert_invariant,
    assert_resume_finishes,
    job_keys,
    rows_of,
    stop_in_flight,
    yunxin_rows,
)

EASEMOB = LaneKey(vendor=Vendor.EASEMOB, app="default")
YUNXIN = LaneKey(vendor=Vendor.YUNXIN, app="default")
GOEASY_MS = 1_763_690_000_000


def easemob_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "vendor": "easemob",
            "op": "recall",
            "msg_id": str(1_500_000_000_000_000_000 + i),
            "to": "user-b",
            "chat_type": "chat",
        }
        for i in range(start, start + n)
    ]


def goeasy_rows(n: int) -> list[dict[str, Any]]:
    return [
        {"vendor": "goeasy", "op": "recall", "groupId": f"g-{i}", "messages": [GOEASY_MS + i]}
        for i in range(n)
    ]


# -- lanes side by side ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_job_sorted_by_lane_starts_every_lane_at_once(tmp_path: Path) -> None:
    """All of Yunxin's rows (200 s of work at its rate), then Easemob's, then GoEasy's: each
    lane's first request leaves within a second of the run's start, not when the lanes before
    it have worked through theirs. The run is stopped once every lane sent, or at 5 s."""
    harness = Harness(tmp_path)
    clock = with_event_clock(harness)
    harness.set_lane(YUNXIN, rate=10.0)
    harness.write_job([*yunxin_rows(2000), *easemob_rows(90), *goeasy_rows(3)])
    harness.seed()
    started = clock.now()
    engines: list[Engine] = []

    sent: set[LaneKey] = set()

    class StopOnceEveryLaneSent(ProgressSink):
        def call_sent(self, lane: LaneKey) -> None:
            sent.add(lane)
            if len(sent) == 3 or clock.now() - started > 5.0:
                engines[0].request_stop()

    def hook(engine: Engine) -> None:
        engines.append(engine)
        engine.progress = StopOnceEveryLaneSent()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(clock.drive)
        with anyio.fail_after(60):
            await harness.run(engine_hook=hook)
        tasks.cancel_scope.cancel()
    first = {
        vendor: min((r.time for r in harness.requests(vendor) if r.items), default=None)
        for vendor in ("yunxin", "easemob", "goeasy")
    }
    assert all(at is not None and at - started < 1.0 for at in first.values()), first
    assert_invariant(harness)


# -- one parse -----------------------------------------------------------------------------


def _count_parses(monkeypatch: pytest.MonkeyPatch, paths: list[Path]) -> Counter[Path]:
    """How often each job file is opened, and how often of those to be parsed (`read_job`)."""
    counts: Counter[Path] = Counter()
    real_open, real_parse = Path.open, reader_module._open_file

    def opening(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self in paths:
            counts[self] += 1
        return real_open(self, *args, **kwargs)

    def parsing(path: Path) -> Any:
        counts[Path(f"parse:{path}")] += 1
        return real_parse(path)

    monkeypatch.setattr(Path, "open", opening)
    monkeypatch.setattr(reader_module, "_open_file", parsing)
    return counts


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def test_each_command_opens_each_job_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --emulate` (seeding, the plan it shows, sending), `plan`, `validate` and `report`:
    one parse of each job file, repeats named from that one pass."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    first = _write(tmp_path / "easemob.jsonl", [*easemob_rows(40), easemob_rows(1)[0]])
    second = _write(tmp_path / "yunxin.jsonl", [*yunxin_rows(30), {"vendor": "nope"}])
    jobs = [first, second]
    out = tmp_path / "out.jsonl"
    real_open, real_parse = Path.open, reader_module._open_file
    for words, opens in (
        # run: the one pass, and the manifest's sha256 of the file (its bytes, not parsed)
        (["run", *map(str, jobs), "--emulate", "--yes", "--no-progress", "--out", str(out)], 2),
        (["plan", *map(str, jobs)], 1),
        (["validate", *map(str, jobs)], 1),
        (["report", str(out)], 1),
    ):
        counts = _count_parses(monkeypatch, jobs)
        main(words)
        monkeypatch.setattr(Path, "open", real_open)
        monkeypatch.setattr(reader_module, "_open", real_parse)
        expected = {job: opens for job in jobs} | {Path(f"parse:{job}"): 1 for job in jobs}
        assert counts == expected, (words[0], counts)
    printed = capsys.readouterr().out
    assert f"{first}:41 repeats line 1" in printed
    assert list(scratch.iterdir()) == [], "the run's spill files are gone"
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    outcomes = Counter((r["status"], r["error"]) for r in rows)
    assert outcomes == {("ok", ""): 70, ("skipped", "duplicate"): 1, ("invalid", "invalid-row"): 1}
    # Refused at the prompt (no terminal, no --yes): nothing sent, and no spill file left.
    third = _write(tmp_path / "third.jsonl", yunxin_rows(5))
    assert main(["run", str(third), "--emulate", "--no-progress"]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert not (tmp_path / "third.results.jsonl").exists()
    assert list(scratch.iterdir()) == []


# -- the first stop does not read on ---------------------------------------------------------


def test_a_first_stop_on_a_big_job_reads_no_more_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3,000 items: the first stop writes rows for what the lane holds and leaves the rest of
    the job to do without a row; a resume sends exactly that, and `report --failed-jobs` lists
    it."""
    harness = Harness(tmp_path)
    harness.write_job(easemob_rows(3_000))
    harness.seed()
    read = 0
    real_read = LaneSource.read

    def reading(self: LaneSource, count: int) -> list[Item]:
        nonlocal read
        items = real_read(self, count)
        read += len(items)
        return items

    monkeypatch.setattr(LaneSource, "read", reading)
    engines: list[Engine] = []
    read_at_stop: list[int] = []

    states: list[LaneState] = []

    class StopOnFirstRow(ProgressSink):
        def rows_written(self, lane: LaneKey | None, status: Status, count: int) -> None:
            if not read_at_stop:
                read_at_stop.append(read)
                engines[0].request_stop()

        def lane_state(self, lane: LaneKey, state: LaneState) -> None:
            states.append(state)

    def hook(engine: Engine) -> None:
        engines.append(engine)
        engine.progress = StopOnFirstRow()

    async def main_run() -> None:
        with anyio.fail_after(60):
            await harness.run(engine_hook=hook)

    anyio.run(main_run, backend="asyncio")
    monkeypatch.undo()
    assert read == read_at_stop[0], "nothing more was read after the stop"
    assert read < 1_000
    latest = assert_invariant(harness)
    assert len(latest) <= read
    summary = engines[0].summary
    assert summary.left_unread == 3_000 - read
    # The progress display says why the lane's bar stops short.
    assert states[-1] == LaneState(kind="stopped", reason=f"{3_000 - read:,} not read")
    assert summary.left_to_do >= 3_000 - read

    failed_jobs = tmp_path / "left.jsonl"
    assert main(["report", str(harness.out), "--failed-jobs", str(failed_jobs)]) == 1
    listed = [orjson.loads(line) for line in failed_jobs.read_bytes().splitlines()]
    done = {k for k, row in latest.items() if row["status"] == "ok"}
    assert len(listed) == 3_000 - len(done)
    assert_resume_finishes(harness, latest)


# -- nothing leaves after a stop ---------------------------------------------------------------


class _Store:
    """A shared store whose permit comes after `steps` looks at the event loop, calling
    `during` on the way; `unavailable`: it then fails as an unreachable Redis does."""

    def __init__(self, steps: int, *, unavailable: bool = False) -> None:
        self.steps = steps
        self.unavailable = unavailable
        self.during: Callable[[], None] = lambda: None
        self.asked = 0
        self.waited = 0

    async def acquire(self, key: str, limit: int, period_s: float) -> float:
        self.asked += 1
        self.during()
        for _ in range(self.steps):
            self.waited += 1
            await anyio.lowlevel.checkpoint()
        if self.unavailable:
            raise LimiterUnavailableError("Redis unreachable")
        return 0.0

    async def acquire_all(self, windows: Sequence[Window]) -> list[float]:
        return [await self.acquire(w.key, w.limit, w.period_s) for w in windows]

    async def pause(self, key: str, seconds: float) -> None:
        pass

    async def aclose(self) -> None:
        pass


@pytest.mark.anyio
@pytest.mark.parametrize("steps", [0, 50], ids=["granted-at-once", "granted-later"])
@pytest.mark.parametrize("stop", ["interrupt", "halt", "lane-stop"])
async def test_no_request_leaves_after_a_stop_while_it_waits_for_the_shared_permit(
    tmp_path: Path, stop: str, steps: int
) -> None:
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(5))
    harness.seed()
    store = _Store(steps)
    engines: list[Engine] = []

    def stopping() -> None:
        engine = engines[0]
        if stop == "interrupt":
            engine.request_stop(ErrorCode.INTERRUPTED)
        elif stop == "halt":
            engine.request_stop(ErrorCode.HALTED)
        else:
            engine.lanes[YUNXIN].stop(CallError(ErrorCode.QUOTA_EXHAUSTED, "quota"))

    store.during = stopping

    def hook(engine: Engine) -> None:
        engines.append(engine)
        engine.shared = store

    with anyio.fail_after(30):
        await harness.run(engine_hook=hook)
    assert store.asked == 1
    assert not [r for r in harness.requests("yunxin") if r.items], "nothing was sent"
    latest = assert_invariant(harness)
    assert {r["status"] for r in latest.values()} <= {"skipped"}
    assert {r["attempts"] for r in latest.values()} <= {0}


@pytest.mark.anyio
async def test_a_first_interrupt_while_redis_is_down_ends_at_once_and_says_interrupted(
    tmp_path: Path,
) -> None:
    """The shared permit's wait ends with the stop: the lane is not stopped on the limiter, and
    its items are `interrupted`, left to do."""
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(5))
    harness.seed()
    store = _Store(5_000, unavailable=True)
    engines: list[Engine] = []
    store.during = lambda: engines[0].request_stop(ErrorCode.INTERRUPTED)

    def hook(engine: Engine) -> None:
        engines.append(engine)
        engine.shared = store

    with anyio.fail_after(30):
        outcome = await harness.run(engine_hook=hook)
    assert store.waited < 5_000, "the permit's wait ended with the stop"
    errors = Counter((r["status"], r["error"]) for r in outcome.rows)
    assert errors == {("skipped", "interrupted"): 5}
    assert outcome.summary.stopped_lanes == {}
    assert outcome.summary.exit_code() == 130


@pytest.mark.anyio
async def test_the_last_lane_stopping_ends_a_long_job(tmp_path: Path) -> None:
    """A single-lane job far longer than a lane holds in memory; the lane stops on its first
    answer (quota exhausted), which comes late: the run still ends, every item with its row."""
    harness = Harness(tmp_path)

    class Late(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if "/messages/" in request.url.path:
                for _ in range(3_000):  # the rest of the run goes on meanwhile
                    await anyio.lowlevel.checkpoint()
            return await self.inner.handle_async_request(request)

    harness.wrap_transport = Late
    harness.write_job(easemob_rows(3_000))
    harness.seed()
    harness.emulators.easemob.state.quota_exhausted = True
    with anyio.fail_after(30):
        outcome = await harness.run(replace(FAST_RUN, concurrency=1))
    counts = Counter((r["status"], r["error"]) for r in outcome.rows)
    assert counts == {("failed", "quota-exhausted"): 30, ("skipped", "lane-stopped"): 2_970}
    assert outcome.summary.exit_code() == 3


def test_an_answer_asking_for_a_retry_after_a_stop_is_not_queued_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call in flight at the stop is answered 503: its last answer is its row at once, and
    it is never queued to be retried."""
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(6))
    harness.seed()
    harness.emulators.yunxin.faults.push("http_503", count=1)
    queued_after_stop: list[int] = []
    real_follow_up = Engine._follow_up

    def follow_up(self: Engine, lane: Lane, work: Work, answer: FollowUp) -> None:
        real_follow_up(self, lane, work, answer)
        if self.stop_reason is not None:
            queued_after_stop.append(len(lane.retries) + len(lane.front))

    monkeypatch.setattr(Engine, "_follow_up", follow_up)
    engines: list[Engine] = []
    stop_in_flight(harness, holding=1)(lambda: engines[0].request_stop())

    async def run() -> None:
        with anyio.fail_after(30):
            await harness.run(replace(FAST_RUN, concurrency=1), engine_hook=engines.append)

    anyio.run(run, backend="asyncio")
    harness.wrap_transport = None
    assert queued_after_stop == [0]
    latest = assert_invariant(harness)
    counts = Counter((r["status"], r["error"]) for r in latest.values())
    assert counts == {("failed", "vendor-unavailable"): 1, ("skipped", "interrupted"): 5}
    assert len([r for r in harness.requests("yunxin") if r.items]) == 1
    assert_resume_finishes(harness, latest)


@pytest.mark.anyio
async def test_a_stop_wakes_a_lane_waiting_for_its_permit(tmp_path: Path) -> None:
    """A lane at one request every 10 s: the stop after its first answer ends the run at that
    moment, not when the next permit would have come."""
    harness = Harness(tmp_path)
    clock = with_event_clock(harness)
    harness.set_lane(YUNXIN, rate=0.1)
    harness.write_job(yunxin_rows(5))
    harness.seed()
    stopped_at: list[float] = []

    class StopOnFirstOk(ProgressSink):
        def rows_written(self, lane: LaneKey | None, status: Status, count: int) -> None:
            if status is Status.OK and not stopped_at:
                stopped_at.append(clock.now())
                engines[0].request_stop()

    engines: list[Engine] = []

    def hook(engine: Engine) -> None:
        engines.append(engine)
        engine.progress = StopOnFirstOk()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(clock.drive)
        with anyio.fail_after(30):
            await harness.run(engine_hook=hook)
        ended_at = clock.now()
        tasks.cancel_scope.cancel()
    assert ended_at - stopped_at[0] < 1.0
    latest = assert_invariant(harness)
    assert set(latest) == job_keys(harness.job)
    assert len(rows_of(harness)) == 5


def test_a_ctrl_c_while_the_plan_reads_the_job_sends_nothing_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during the one pass (before the plan is shown): exit 130, no request, no result
    row, and the lanes' files of the job removed."""
    from batchrecall.intake import plan as plan_module
    from batchrecall.intake import reader as reader_module

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    job = _write(tmp_path / "job.jsonl", [*easemob_rows(600), *yunxin_rows(600)])
    real_read = reader_module.read_job

    def interrupted(path: Path, **kwargs: Any) -> Any:
        for number, row in enumerate(real_read(path, **kwargs)):
            if number == 700:  # both lanes have files by now
                raise KeyboardInterrupt
            yield row

    monkeypatch.setattr(plan_module, "read_job", interrupted)
    out = tmp_path / "job.results.jsonl"
    assert main(["run", str(job), "--emulate", "--yes", "--no-progress"]) == 130
    assert not out.exists() or out.read_bytes() == b""
    assert list(scratch.rglob("*")) == []
