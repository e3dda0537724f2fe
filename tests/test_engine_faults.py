"""Faults a long run meets, injected into the emulators: every item ends right, none lost."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from batchrecall.emulators.common import EmulatorSettings
from batchrecall.errors import ErrorCode
from batchrecall.models import LaneKey, Status, Vendor
from batchrecall.results.summary import ExitCode
from batchrecall.run.engine import Engine, ProgressSink
from tests.harness import FAST_RUN, Harness

EASEMOB = LaneKey(vendor=Vendor.EASEMOB, app="default")


def easemob_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "vendor": "easemob",
            "op": "recall",
            "msg_id": str(1_400_000_000_000_000_000 + i),
            "to": "user-b",
            "chat_type": "chat",
        }
        for i in range(start, start + n)
    ]


def yunxin_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "vendor": "yunxin",
            "op": "recall",
            "conversation_id": "a|1|b",
            "message_server_id": str(660_000_000 + i),
        }
        for i in range(n)
    ]


def _no_item_lost(harness: Harness, rows: int, outcome: Any) -> None:
    keys = [row["item_key"] for row in outcome.rows]
    assert len(set(keys)) == rows, "every item has a row"
    assert len(keys) == rows, "no item has two rows in one run"


class _OnFirstItem(ProgressSink):
    def __init__(self, action: Any) -> None:
        self.action = action
        self.fired = False

    def rows_written(self, lane: LaneKey | None, status: Status, count: int) -> None:
        if not self.fired:
            self.fired = True
            self.action()


@pytest.mark.anyio
async def test_server_error_burst_recovers(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(12))
    harness.seed()
    harness.emulators.yunxin.faults.push("http_502", count=3)
    harness.emulators.yunxin.faults.push("code_500", count=2)
    outcome = await harness.run()
    _no_item_lost(harness, 12, outcome)
    assert set(outcome.statuses().values()) == {"ok"}
    assert sum(row["attempts"] for row in outcome.rows) == 12 + 5


@pytest.mark.anyio
async def test_transient_failures_past_max_attempts_fail_with_their_code(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(1))
    harness.seed()
    harness.emulators.yunxin.faults.push("http_502", count=10)
    outcome = await harness.run(replace(FAST_RUN, max_attempts=3))
    (row,) = outcome.rows
    assert (row["status"], row["error"], row["attempts"]) == ("failed", "vendor-unavailable", 3)
    assert row["http_status"] == 502


@pytest.mark.anyio
async def test_dropped_connection_is_retried_and_idempotent(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.write_job(easemob_rows(3))
    harness.seed()
    harness.emulators.easemob.faults.push("drop", only_path_contains="/messages/")
    # Per-message answers: the retried batch is answered at once, not refused whole and split.
    harness.emulators.easemob.state.batch_refusal = "per_message"
    outcome = await harness.run()
    _no_item_lost(harness, 3, outcome)
    # The dropped call was processed: its retry answers "not_found msg" (already recalled).
    assert set(outcome.statuses().values()) == {"not_found"}
    assert {row["attempts"] for row in outcome.rows} == {2}


@pytest.mark.anyio
async def test_token_expiring_mid_run_is_refreshed_once(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.write_job(easemob_rows(6))
    harness.seed()
    harness.set_lane(EASEMOB, batch_recall=False)
    expire = _OnFirstItem(harness.emulators.easemob.state.expire_tokens)

    def hook(engine: Engine) -> None:
        engine.progress = expire

    outcome = await harness.run(replace(FAST_RUN, concurrency=1), engine_hook=hook)
    assert set(outcome.statuses().values()) == {"ok"}
    token_requests = [r for r in harness.requests("easemob") if r.path.endswith("/token")]
    assert len(token_requests) == 2
    assert sorted(row["attempts"] for row in outcome.rows) == [1, 1, 1, 1, 1, 2]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("switch", "code"),
    [("recall_service_enabled", "service-disabled"), ("quota_exhausted", "quota-exhausted")],
)
async def test_fatal_answers_stop_the_lane_at_once(tmp_path: Path, switch: str, code: str) -> None:
    harness = Harness(tmp_path)
    harness.write_job([*easemob_rows(90), *yunxin_rows(2)])
    harness.seed()
    setattr(harness.emulators.easemob.state, switch, switch == "quota_exhausted")
    outcome = await harness.run(replace(FAST_RUN, concurrency=1))
    _no_item_lost(harness, 92, outcome)
    easemob = Counter((r["status"], r["error"]) for r in outcome.rows if r["vendor"] == "easemob")
    assert easemob == {("failed", code): 30, ("skipped", "lane-stopped"): 60}
    recall_calls = [r for r in harness.requests("easemob") if "/messages/" in r.path]
    assert len(recall_calls) == 1, "no call after the fatal answer"
    assert {r["status"] for r in outcome.rows if r["vendor"] == "yunxin"} == {"ok"}
    assert outcome.summary.exit_code() == ExitCode.HALTED


@pytest.mark.anyio
async def test_failure_rate_halts_the_run(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    rows = easemob_rows(300)
    harness.write_job(rows)
    harness.seed({("easemob", r["msg_id"]): {"age_s": 3600} for r in rows})
    # Per-message answers: each call of 30 finishes whole (not refused whole and split).
    harness.emulators.easemob.state.batch_refusal = "per_message"
    run = replace(FAST_RUN, concurrency=1, halt_min_items=50, halt_failure_rate=0.5)
    outcome = await harness.run(run)
    _no_item_lost(harness, 300, outcome)
    counts = Counter((r["status"], r["error"]) for r in outcome.rows)
    sent = counts[("failed", "recall-window-exceeded")]
    assert sent == 60  # two calls of 30 finished, then nothing more was sent
    assert counts[("skipped", "halted")] == 240
    assert all(r["attempts"] == 0 for r in outcome.rows if r["status"] == "skipped")
    assert outcome.summary.exit_code() == ExitCode.HALTED


@pytest.mark.anyio
async def test_throttle_feedback_keeps_throttles_few(tmp_path: Path) -> None:
    """A vendor whose real limit (20/s) is under the configured rate (50/s)."""
    harness = Harness(tmp_path, EmulatorSettings(rate=20))
    harness.write_job(easemob_rows(400))
    harness.seed()
    harness.set_lane(EASEMOB, batch_recall=False, rate=50.0)
    outcome = await harness.run(replace(FAST_RUN, max_attempts=8))
    _no_item_lost(harness, 400, outcome)
    assert set(outcome.statuses().values()) == {"ok"}
    throttled = [r for r in harness.requests("easemob") if r.status == 429]
    assert 1 <= len(throttled) <= 8
    assert outcome.summary.throttles["easemob.default"] == len(throttled)


@pytest.mark.anyio
async def test_first_interrupt_drains_and_skips_the_rest(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.write_job(yunxin_rows(40))
    harness.seed()
    holder: dict[str, Engine] = {}

    def hook(engine: Engine) -> None:
        holder["engine"] = engine
        engine.progress = _OnFirstItem(lambda: engine.request_stop(ErrorCode.INTERRUPTED))

    outcome = await harness.run(replace(FAST_RUN, concurrency=2), engine_hook=hook)
    _no_item_lost(harness, 40, outcome)
    counts = Counter((r["status"], r["error"]) for r in outcome.rows)
    assert counts[("skipped", "interrupted")] >= 30
    assert counts[("ok", "")] == len(harness.requests("yunxin"))
    assert outcome.summary.exit_code() == ExitCode.INTERRUPTED
