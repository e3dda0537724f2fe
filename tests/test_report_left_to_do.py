"""`report`: what is left to do, per SPEC §5, and the job file of it (`--failed-jobs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.intake.reader import read_job
from batchrecall.models import Item


def _job(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def _recall(i: int) -> dict[str, Any]:
    return {
        "vendor": "easemob",
        "op": "recall",
        "msg_id": str(1000 + i),
        "to": "u",
        "chat_type": "chat",
    }


def _results(path: Path, job: Path, outcomes: dict[int, tuple[str, str]]) -> Path:
    """A results file with one row for each job item named in `outcomes` (by row index)."""
    items = [row for row in read_job(job) if isinstance(row, Item)]
    rows = [
        {
            "job": str(job),
            "line": item.line,
            "index": item.index,
            "item_key": item.item_key,
            "vendor": str(item.vendor),
            "app": item.app,
            "op": str(item.op),
            "target": item.target,
            "status": outcomes[n][0],
            "error": outcomes[n][1],
        }
        for n, item in enumerate(items)
        if n in outcomes
    ]
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def _targets(job: Path) -> list[str]:
    return [row.target for row in read_job(job) if isinstance(row, Item)]


@pytest.mark.parametrize("error", ["auth-failed", "service-disabled", "quota-exhausted"])
def test_lane_stopping_failures_are_left_to_do(tmp_path: Path, error: str) -> None:
    job = _job(tmp_path / "job.jsonl", [_recall(i) for i in range(3)])
    results = _results(
        tmp_path / "job.results.jsonl",
        job,
        {0: ("ok", ""), 1: ("failed", error), 2: ("failed", "recall-window-exceeded")},
    )
    left = tmp_path / "left.jsonl"
    assert main(["report", str(results), "--failed-jobs", str(left)]) == 1
    assert _targets(left) == ["1001"]


def test_items_without_a_row_are_left_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run killed before it wrote every row: the items it never wrote are still to do."""
    job = _job(tmp_path / "job.jsonl", [_recall(i) for i in range(4)] + [_recall(0)])
    results = _results(tmp_path / "job.results.jsonl", job, {0: ("ok", ""), 2: ("ok", "")})
    left = tmp_path / "left.jsonl"
    assert main(["report", str(results), "--failed-jobs", str(left)]) == 1
    assert _targets(left) == ["1001", "1003"]
    out = capsys.readouterr().out
    assert "without a row: 2" in out
    assert "left to do: 2" in out


def test_items_without_a_row_count_without_failed_jobs_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path / "job.jsonl", [_recall(i) for i in range(2)])
    results = _results(tmp_path / "job.results.jsonl", job, {0: ("ok", "")})
    assert main(["report", str(results)]) == 1
    assert "left to do: 1" in capsys.readouterr().out


def test_nothing_left_when_every_item_is_settled(tmp_path: Path) -> None:
    job = _job(tmp_path / "job.jsonl", [_recall(i) for i in range(2)])
    results = _results(
        tmp_path / "job.results.jsonl", job, {0: ("ok", ""), 1: ("not_found", "not-found")}
    )
    left = tmp_path / "left.jsonl"
    assert main(["report", str(results), "--failed-jobs", str(left)]) == 0
    assert left.read_text() == ""


def test_a_moved_job_file_of_settled_items_is_no_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path / "job.jsonl", [_recall(0)])
    results = _results(tmp_path / "job.results.jsonl", job, {0: ("ok", "")})
    job.unlink()
    assert main(["report", str(results), "--failed-jobs", str(tmp_path / "left.jsonl")]) == 0
    assert "cannot read" in capsys.readouterr().err
