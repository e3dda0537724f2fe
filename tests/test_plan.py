"""The plan shown before a run counts items and calls exactly as the run will send them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from batchrecall.config import Config, parse_config
from batchrecall.intake.reader import read_job
from batchrecall.models import JobRef, LaneKey, Op, Vendor
from batchrecall.results.store import ResumeIndex
from batchrecall.run.runner import plan_job

EASEMOB = LaneKey(vendor=Vendor.EASEMOB, app="default")


def _job(tmp_path: Path, n: int) -> list[JobRef]:
    rows = [
        {"vendor": "easemob", "op": "recall", "msg_id": str(10**18 + i), "to": "u",
         "chat_type": "chat"}
        for i in range(n)
    ]  # fmt: skip
    rows.append(rows[0])  # a duplicate
    rows.append({"vendor": "easemob", "op": "recall"})  # an invalid row
    path = tmp_path / "job.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return [JobRef(path=path, name=str(path))]


def _config(batch_recall: bool, rate: float = 10.0) -> Config:
    raw = {
        "easemob": {
            "default": {
                "base_url": "https://a1.easemob.com",
                "org_name": "o",
                "app_name": "a",
                "client_id": "id",
                "client_secret": "secret",
                "rate": rate,
                "batch_recall": batch_recall,
            }
        }
    }
    return parse_config(raw, environ={}, source="test")


@pytest.mark.parametrize(("batch_recall", "calls"), [(True, 2), (False, 31)])
def test_calls_follow_the_lanes_batch_setting(
    tmp_path: Path, batch_recall: bool, calls: int
) -> None:
    config = _config(batch_recall)
    plan = plan_job(_job(tmp_path, 31), config=config)
    lane = plan.lanes[EASEMOB]
    assert lane.items[Op.RECALL] == 31
    assert lane.calls[Op.RECALL] == calls
    assert (plan.duplicates, plan.invalid_count) == (1, 1)
    assert plan.estimated_s() == pytest.approx(calls / 10.0)


def test_without_a_config_the_documented_limits_and_default_rates_apply(tmp_path: Path) -> None:
    plan = plan_job(_job(tmp_path, 31), config=None)
    assert plan.lanes[EASEMOB].calls[Op.RECALL] == 2
    assert plan.lanes[EASEMOB].rate == 50.0


def test_the_plan_names_the_first_repeats_and_the_rows_they_repeat(tmp_path: Path) -> None:
    rows = [
        {"vendor": "yunxin", "op": "recall", "conversation_id": "a|1|b",
         "message_server_id": str(100 + i)}
        for i in range(30)
    ]  # fmt: skip
    rows += rows[:25]  # lines 31-55 repeat lines 1-25
    first = tmp_path / "first.jsonl"
    first.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows[:30]))
    second = tmp_path / "second.jsonl"
    second.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows[30:]))
    jobs = [JobRef(path=first, name="first.jsonl"), JobRef(path=second, name="second.jsonl")]
    plan = plan_job(jobs, config=None)
    assert (plan.items, plan.duplicates) == (30, 25)
    assert len(plan.repeats) == 20
    assert [(r.job, r.line, r.first_job, r.first_line) for r in plan.repeats[:2]] == [
        ("second.jsonl", 1, "first.jsonl", 1),
        ("second.jsonl", 2, "first.jsonl", 2),
    ]
    lane = plan.lanes[LaneKey(vendor=Vendor.YUNXIN, app="default")]
    assert lane.duplicates == 25
    assert plan.rows == 55  # what the run will write, each repeat included


def test_on_resume_settled_items_and_their_repeats_are_counted_apart(tmp_path: Path) -> None:
    jobs = _job(tmp_path, 31)  # 31 items, a repeat of the first, an invalid row
    rows = list(read_job(jobs[0].path))
    settled = {rows[0].item_key}
    invalid_key = next(row.item_key for row in rows if row.item_key.startswith("invalid:"))
    plan = plan_job(jobs, config=None, resume=_index(settled | {invalid_key}))
    assert (plan.items, plan.already_done, plan.duplicates) == (30, 1, 1)
    assert (plan.invalid_count, plan.invalid_settled) == (1, 1)
    # The repeat of a settled item and the settled invalid row get no new row.
    assert plan.rows == 30


def _index(keys: set[str]) -> ResumeIndex:
    index = ResumeIndex()
    for key in keys:
        status = "invalid" if key.startswith("invalid:") else "ok"
        index.record(key, status, "invalid-row" if status == "invalid" else "")
    return index
