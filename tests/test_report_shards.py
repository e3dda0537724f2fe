"""`report` over the results files of a sharded run reads them as one run."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from batchrecall.cli.main import main
from batchrecall.errors import ErrorCode
from batchrecall.intake.reader import read_job
from batchrecall.intake.shard import shard_of
from batchrecall.models import InvalidRow, Item, ResultRow, Status
from batchrecall.results.store import ResultsWriter, load_resume_index
from tests.test_shard import job_rows, write_job

# The outcomes items meet, cycled over the job: some done, some left to do.
OUTCOMES = [
    (Status.OK, ""),
    (Status.FAILED, ErrorCode.TIMEOUT),
    (Status.NOT_FOUND, ErrorCode.NOT_FOUND),
    (Status.FAILED, ErrorCode.RECALL_WINDOW_EXCEEDED),
    (Status.SKIPPED, ErrorCode.INTERRUPTED),
    (Status.FAILED, ErrorCode.LIMITER_UNAVAILABLE),
    (Status.UNKNOWN, ErrorCode.INTERRUPTED),
    (Status.SKIPPED, ErrorCode.LANE_STOPPED),
]


def result_row(row: Item | InvalidRow, status: Status, error: str) -> ResultRow:
    if isinstance(row, InvalidRow):
        status, error = Status.INVALID, ErrorCode.INVALID_ROW
    return ResultRow(
        job=row.job,
        line=row.line,
        index=getattr(row, "index", 0),
        ref=row.ref,
        vendor=str(row.vendor),
        app=row.app,
        op=str(row.op),
        target=getattr(row, "target", ""),
        item_key=row.item_key,
        status=status,
        error=str(error),
        message="",
        http_status=None,
        vendor_code="",
        attempts=1,
        call_id="c1",
        finished_at="2026-11-20T10:00:00.000Z",
    )


def write_results(job: Path, count: int) -> tuple[Path, list[Path]]:
    """One run's results, and the same rows split into `count` shard files by the item's shard.

    Some items get two rows (a retry that later succeeded): the latest is their outcome.
    """
    single = job.with_name("single.results.jsonl")
    shards = [job.with_name(f"big.shard-{i}-of-{count}.results.jsonl") for i in range(1, 1 + count)]
    writers = [ResultsWriter(path, "jsonl", append=False) for path in shards]
    whole = ResultsWriter(single, "jsonl", append=False)
    outcomes = itertools.cycle(OUTCOMES)
    for n, row in enumerate(read_job(job, job_name=job.name)):
        rows = [result_row(row, *next(outcomes))]
        if n % 11 == 0:
            rows.append(result_row(row, Status.OK, ""))
        whole.write(rows)
        writers[shard_of(row, count) - 1].write(rows)
    for writer in [whole, *writers]:
        writer.close()
    return single, shards


def report(
    paths: list[Path], tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, list[str], bytes]:
    """The exit code, the first line (it names the files), the rest, and the rows left to do."""
    left = tmp_path / f"{name}.left.jsonl"
    code = main(["report", *map(str, paths), "--failed-jobs", str(left)])
    lines = capsys.readouterr().out.splitlines()
    body = [line for line in lines[1:] if not line.startswith("Wrote")]
    return code, lines[0], body, left.read_bytes()


def test_report_over_the_shard_files_equals_the_single_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_job(tmp_path / "big.jsonl", job_rows())
    single, shards = write_results(job, 4)
    code_one, head_one, body_one, left_one = report([single], tmp_path, "one", capsys)
    code_four, head_four, body_four, left_four = report(shards, tmp_path, "four", capsys)
    assert all(path.stat().st_size for path in shards)
    assert body_four == body_one
    assert left_four == left_one
    assert code_four == code_one == 1
    assert head_one.split(": ")[-1] == head_four.split(": ")[-1]
    assert all(str(path) in head_four for path in shards)
    # What is left to do is what --resume would send again, the limiter's stops included.
    index = load_resume_index(single)
    left_keys = {key for key, (status, error) in index.as_dict().items() if status != "invalid"}
    left_keys = {key for key in left_keys if not index.is_done(key)}
    assert len(left_one.splitlines()) == len(left_keys) > 0
    index.close()


def test_report_takes_an_item_outcome_from_the_last_file_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_job(
        tmp_path / "small.jsonl",
        [{"vendor": "yunxin", "op": "clear_history", "conversation_id": "a|1|b"}],
    )
    (item,) = read_job(job, job_name=job.name)
    first, second = tmp_path / "first.results.jsonl", tmp_path / "second.results.jsonl"
    for path, status, error in [(first, Status.FAILED, ErrorCode.TIMEOUT), (second, Status.OK, "")]:
        writer = ResultsWriter(path, "jsonl", append=False)
        writer.write([result_row(item, status, error)])
        writer.close()
    assert main(["report", str(first), str(second)]) == 0
    assert main(["report", str(second), str(first)]) == 1
    assert "left to do: 1" in capsys.readouterr().out


def test_report_names_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = write_job(tmp_path / "big.jsonl", job_rows()[:5])
    single, _ = write_results(job, 2)
    assert main(["report", str(single), str(tmp_path / "gone.results.jsonl")]) == 2
    assert "gone.results.jsonl" in capsys.readouterr().err
