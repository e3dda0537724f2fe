"""Resume by item_key: done items are never sent again; what is left is sent once."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import anyio
import httpx
import orjson
import pytest

from batchrecall.keystore import KeyStore
from batchrecall.results.summary import ExitCode
from batchrecall.run.engine import Engine
from tests.harness import FAST_RUN, Harness
from tests.test_engine_faults import _OnFirstItem, easemob_rows, yunxin_rows


def _sent_items(harness: Harness, vendor: str) -> Counter[str]:
    return Counter(i for r in harness.requests(vendor) for i in r.items if r.status == 200)


@pytest.mark.anyio
async def test_resume_after_interrupt_sends_only_what_is_left(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(30))
    harness.seed()

    def stop_early(engine: Engine) -> None:
        engine.progress = _OnFirstItem(engine.request_stop)

    first = await harness.run(replace(FAST_RUN, concurrency=2), engine_hook=stop_early)
    assert first.summary.exit_code() == ExitCode.INTERRUPTED
    second = await harness.run(resume=True)
    latest = second.latest()
    assert len(latest) == 30
    assert {row["status"] for row in latest.values()} == {"ok"}
    assert max(_sent_items(harness, "yunxin").values()) == 1, "no item was sent twice"
    assert second.summary.exit_code() == ExitCode.OK


@pytest.mark.anyio
async def test_torn_last_line_and_reordered_job_resume_correctly(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    rows = easemob_rows(10)
    harness.write_job(rows)
    harness.seed()
    await harness.run(replace(FAST_RUN, concurrency=1))
    # Keep four rows and half of a fifth, as a killed writer would leave them.
    lines = harness.out.read_bytes().splitlines(keepends=True)
    harness.out.write_bytes(b"".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    kept = {orjson.loads(line)["target"] for line in lines[:4]}
    for row in rows:  # the vendor forgets what it recalled, so a resend would show as ok
        harness.emulators.easemob.state.add_message(
            row["msg_id"], sender="user-a", to="user-b", chat_type="chat"
        )
    harness.write_job(list(reversed(rows)))
    outcome = await harness.run(resume=True)
    latest = outcome.by_target()
    assert len(latest) == 10
    assert {row["status"] for row in latest.values()} == {"ok"}
    resent = {r["target"] for r in outcome.rows[4:] if r["target"]}
    assert resent == {row["msg_id"] for row in rows} - kept


@pytest.mark.anyio
async def test_transient_failures_are_resent_permanent_ones_kept(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    rows = yunxin_rows(3)
    harness.write_job([*rows, {"vendor": "yunxin", "op": "recall"}])
    harness.seed({("yunxin", rows[2]["message_server_id"]): {"age_s": 3600}})
    harness.emulators.yunxin.faults.push("http_502", count=2)
    await harness.run(replace(FAST_RUN, concurrency=1, max_attempts=1))
    before = len(harness.requests("yunxin"))
    outcome = await harness.run(resume=True)
    latest = outcome.by_target()
    assert latest[rows[0]["message_server_id"]]["status"] == "ok"
    assert latest[rows[1]["message_server_id"]]["status"] == "ok"
    assert latest[rows[2]["message_server_id"]]["error"] == "recall-window-exceeded"
    # Only the two items that failed transiently were sent again; the invalid row stays as is.
    assert len(harness.requests("yunxin")) - before == 2
    assert sum(1 for r in outcome.rows if r["status"] == "invalid") == 1


@pytest.mark.anyio
async def test_second_interrupt_marks_calls_in_flight_unknown(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(6))
    harness.seed()
    harness.emulators.yunxin.faults.push("delay", delay_s=60.0)
    sent = anyio.Event()

    class Watching(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sent.set()
            return await self.inner.handle_async_request(request)

    original = httpx.ASGITransport
    outcome = None

    async def run() -> None:
        nonlocal outcome
        outcome = await harness.run(replace(FAST_RUN, concurrency=1))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx, "ASGITransport", lambda app: Watching(original(app=app)))
        async with anyio.create_task_group() as tg:

            async def cancel_when_sent() -> None:
                await sent.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(cancel_when_sent)
            tg.start_soon(run)
    rows = [orjson.loads(line) for line in harness.out.read_bytes().splitlines()]
    counts = Counter((r["status"], r["error"]) for r in rows)
    # What the lane held gets its rows at once (one write): left to do, and sent by a resume.
    assert counts == {("unknown", "interrupted"): 1, ("skipped", "interrupted"): 5}
    resumed = await harness.run(resume=True)
    # The one in flight had reached the vendor: its recall is done, so it is not found now.
    assert sorted(resumed.statuses().values()) == ["not_found"] + ["ok"] * 5
    assert len(resumed.latest()) == 6


@pytest.mark.anyio
async def test_duplicates_and_resume_hold_once_the_item_keys_are_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every key store spills past 20 keys here: the run's duplicate check and the resume index
    then answer from SQLite, behind the Bloom filter and the batch not yet written."""
    monkeypatch.setattr(KeyStore.__init__, "__defaults__", (20,))
    harness = Harness(tmp_path)
    rows = yunxin_rows(60)
    harness.write_job([*rows, *rows[:5], *rows[40:45]])  # repeats read after the spill
    harness.seed()

    def stop_early(engine: Engine) -> None:
        engine.progress = _OnFirstItem(engine.request_stop)

    first = await harness.run(replace(FAST_RUN, concurrency=2), engine_hook=stop_early)
    assert first.summary.exit_code() == ExitCode.INTERRUPTED
    done_first = {r["item_key"] for r in first.rows if r["status"] == "ok"}
    second = await harness.run(resume=True)
    outcomes = {r["item_key"]: r for r in second.rows if r["error"] != "duplicate"}
    assert len(outcomes) == 60
    assert {row["status"] for row in outcomes.values()} == {"ok"}
    assert max(_sent_items(harness, "yunxin").values()) == 1, "no item was sent twice"
    repeats = [r for r in second.rows[len(first.rows) :] if r["error"] == "duplicate"]
    repeated_keys = {r["item_key"] for r in first.rows + second.rows if r["error"] == "duplicate"}
    # A repeat of an item the first run settled is kept by the resume, not a duplicate again.
    assert len(repeats) == 10 - len(repeated_keys & done_first)
    assert second.summary.exit_code() == ExitCode.OK
