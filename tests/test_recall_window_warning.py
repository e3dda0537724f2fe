"""plan and run count, per lane, the items whose `sent_at` is past the lane's recall window
(SPEC §8): the vendor would refuse them as recall-window-exceeded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.config import parse_config
from batchrecall.models import JobRef, LaneKey, Vendor
from batchrecall.run.runner import plan_job

NOW_S = 1_764_756_000.0
MINUTE_MS = 60_000


def _job(path: Path, rows: list[dict[str, Any]]) -> list[JobRef]:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return [JobRef(path=path, name=path.name)]


def _easemob(n: int, age_ms: int | None, **extra: Any) -> dict[str, Any]:
    row = {"vendor": "easemob", "op": "recall", "msg_id": str(1_100_000_000 + n), "to": "u",
           "chat_type": "chat"} | extra  # fmt: skip
    if age_ms is not None:
        row["sent_at"] = int(NOW_S * 1000) - age_ms
    return row


def _yunxin(n: int, age_ms: int, **extra: Any) -> dict[str, Any]:
    sent_at = int(NOW_S * 1000) - age_ms
    row = {"vendor": "yunxin", "op": "recall", "conversation_id": "s|1|u",
           "message_server_id": str(900 + n), "sent_at": sent_at}  # fmt: skip
    return row | extra


def test_items_past_the_vendors_default_window_are_counted_per_lane(tmp_path: Path) -> None:
    jobs = _job(
        tmp_path / "job.jsonl",
        [
            _easemob(1, 10 * MINUTE_MS),  # past Easemob's 2 minutes
            _easemob(2, 10 * MINUTE_MS, force=True),  # force does not lift the window
            _easemob(3, 30_000),  # inside
            _easemob(4, None),  # no sent_at: nothing known
            _easemob(1, 10 * MINUTE_MS),  # a repeat is not counted twice
            _yunxin(1, 10 * MINUTE_MS),  # two-way: 2 minutes
            _yunxin(2, 10 * MINUTE_MS, type=1),  # one-way: 30 days
            _yunxin(3, 31 * 24 * 60 * MINUTE_MS, type=1),
            {
                "vendor": "yunxin",
                "op": "clear_history",
                "conversation_id": "s|1|u",
                "sent_at": 1,
            },  # no window
        ],
    )
    plan = plan_job(jobs, config=None, now=NOW_S)
    easemob = plan.lanes[LaneKey(vendor=Vendor.EASEMOB, app="default")]
    yunxin = plan.lanes[LaneKey(vendor=Vendor.YUNXIN, app="default")]
    assert (easemob.past_window, yunxin.past_window) == (2, 2)


def test_the_configured_window_replaces_the_default(tmp_path: Path) -> None:
    jobs = _job(tmp_path / "job.jsonl", [_easemob(1, 10 * MINUTE_MS), _easemob(2, 3 * MINUTE_MS)])
    config = parse_config(
        {"easemob": {"default": {"base_url": "https://a1.easemob.com", "org_name": "o",
                                 "app_name": "a", "client_id": "i", "client_secret": "s",
                                 "recall_window_s": 300}}},
        environ={}, source="test",
    )  # fmt: skip
    plan = plan_job(jobs, config=config, now=NOW_S)
    assert plan.lanes[LaneKey(vendor=Vendor.EASEMOB, app="default")].past_window == 1


@pytest.mark.parametrize("command", ["plan", "run"])
def test_plan_and_run_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    now_ms = int(time.time() * 1000)
    rows = [_easemob(n, None) | {"sent_at": now_ms - 3_600_000} for n in range(3)]
    rows.append(_easemob(9, None) | {"sent_at": now_ms})
    job = tmp_path / "job.jsonl"
    _job(job, rows)
    words = [command, str(job)] + (["--emulate", "--dry-run"] if command == "run" else [])
    assert main(words) == 0
    out = capsys.readouterr().out
    assert (
        "warning: 3 items sent longer ago than the lane's recall window (their sent_at): they "
        "will fail as recall-window-exceeded" in out
    )
    assert "force: true" in out
