"""The plan shown before a run counts items and calls exactly as the run will send them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from batchrecall.config import Config, parse_config
from batchrecall.models import JobRef, LaneKey, Op, Vendor
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
