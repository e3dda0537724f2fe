"""Results files read back together, and the lock that keeps two runs off one file."""

from __future__ import annotations

import fcntl
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from batchrecall.cli.main import main
from batchrecall.errors import ErrorCode, UsageError
from batchrecall.intake.reader import read_job
from batchrecall.models import Item, Status
from batchrecall.results.store import ResultsLock, ResultsWriter
from batchrecall.results.view import load_view
from tests.test_report_shards import result_row
from tests.test_shard import write_job


def one_item(tmp_path: Path) -> Item:
    job = write_job(
        tmp_path / "small.jsonl",
        [{"vendor": "yunxin", "op": "clear_history", "conversation_id": "a|1|b"}],
    )
    (item,) = read_job(job, job_name=job.name)
    assert isinstance(item, Item)
    return item


def write_rows(path: Path, rows: list[Any]) -> Path:
    writer = ResultsWriter(path, "jsonl", append=False)
    writer.write(rows)
    writer.close()
    return path


def test_report_takes_the_row_finished_last_whatever_the_order_of_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run resumed into a new file finished the item at 10:05; the older file's timeout of
    10:00 is not its outcome, in whichever order the files are named."""
    item = one_item(tmp_path)
    older = replace(
        result_row(item, Status.FAILED, ErrorCode.TIMEOUT), finished_at="2026-11-20T10:00:00.000Z"
    )
    newer = replace(result_row(item, Status.OK, ""), finished_at="2026-11-20T10:05:00.000Z")
    resumed = write_rows(tmp_path / "resumed.results.jsonl", [newer])
    first = write_rows(tmp_path / "first.results.jsonl", [older])
    assert main(["report", str(resumed), str(first)]) == 0
    assert main(["report", str(first), str(resumed)]) == 0
    out = capsys.readouterr().out
    assert "left to do: 0" in out
    view = load_view([resumed, first])
    try:
        ((_, row),) = [(r["item_key"], r) for r in view.latest()]
        assert (row["status"], row["finished_at"]) == ("ok", "2026-11-20T10:05:00.000Z")
    finally:
        view.close()


def test_within_one_file_the_later_line_is_the_outcome(tmp_path: Path) -> None:
    """A clock set back between two runs on one file does not reorder its lines; the other file
    is compared by its time."""
    item = one_item(tmp_path)
    rows = [
        replace(
            result_row(item, Status.FAILED, ErrorCode.TIMEOUT), finished_at="2026-11-20T10:09Z"
        ),
        replace(result_row(item, Status.OK, ""), finished_at="2026-11-20T10:01Z"),
    ]
    single = write_rows(tmp_path / "single.results.jsonl", rows)
    other = write_rows(
        tmp_path / "other.results.jsonl",
        [replace(result_row(item, Status.UNKNOWN, "interrupted"), finished_at="2026-11-20T10:00Z")],
    )
    view = load_view([single, other])
    try:
        assert [r["status"] for r in view.latest()] == ["ok"]
    finally:
        view.close()


def test_a_lock_file_replaced_between_open_and_lock_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run released the lock file and a third took a new one at the same path while we
    were between opening and locking: our lock holds a file nobody else sees, so we look again,
    find the third run's lock, and refuse."""
    results = tmp_path / "job.results.jsonl"
    lock_path = results.with_name(results.name + ".lock")
    lock_path.write_text("111\n")
    real_flock = fcntl.flock
    third: list[int] = []

    def flock_after_replacement(fd: int, operation: int) -> None:
        if not third:
            lock_path.unlink()  # the holder's release
            new = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            real_flock(new, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a third run takes the path
            os.write(new, b"333\n")
            third.append(new)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_replacement)
    try:
        with pytest.raises(UsageError, match="process 333"):
            ResultsLock(results).acquire()
    finally:
        for fd in third:
            os.close(fd)
