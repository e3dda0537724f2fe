"""`batchrecall report`: what it refuses, its exit codes, what is left, every failure, the counts
the plan and the run's summary give too, and job files found from anywhere."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEMO = ["--emulate", "--emulate-scenario", str(SAMPLES / "demo.scenario.json")]


def _rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo job run from tmp_path as `jobs/demo.jsonl`: its results beside it."""
    (tmp_path / "jobs").mkdir()
    shutil.copy(SAMPLES / "demo.jsonl", tmp_path / "jobs" / "demo.jsonl")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "jobs/demo.jsonl", *DEMO, "--yes", "--no-progress"]) == 1
    return tmp_path / "jobs" / "demo.results.jsonl"


def _fail_later(results: Path, targets: set[str], error: str = "timeout") -> None:
    """Append rows as a later run would, leaving these items failed with `error`."""
    rows = [r for r in _rows(results) if r["target"] in targets and r["error"] != "duplicate"]
    with results.open("ab") as handle:
        for row in rows:
            handle.write(orjson.dumps({**row, "status": "failed", "error": error}) + b"\n")


def test_a_job_file_is_refused_saying_what_it_looks_like(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "job.jsonl"
    shutil.copy(SAMPLES / "demo.jsonl", jsonl)
    job_csv = tmp_path / "job.csv"
    shutil.copy(SAMPLES / "demo.csv", job_csv)
    for job in (jsonl, job_csv):
        assert main(["report", str(job)]) == 2
        assert "this looks like a job file" in capsys.readouterr().err
    other = tmp_path / "notes.jsonl"
    other.write_text('{"hello": "world"}\n')
    assert main(["report", str(other)]) == 2
    assert "not a batchrecall results file" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.results.jsonl")]) == 2


def test_exit_0_when_nothing_is_left_1_when_items_are(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(demo)]) == 0  # permanent failures and invalid rows: not to do
    assert "left to do: 0" in capsys.readouterr().out
    _fail_later(demo, {"1100000000000000002"})
    assert main(["report", str(demo)]) == 1
    assert "left to do: 1" in capsys.readouterr().out


def test_plan_summary_and_report_count_items_alike(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    main(["validate", "jobs/demo.jsonl"])
    main(["plan", "jobs/demo.jsonl"])
    main(["run", "jobs/demo.jsonl", *DEMO, "--yes", "--no-progress", "--overwrite"])
    main(["report", str(demo)])
    printed = capsys.readouterr().out
    counted = "17 items (and 1 invalid row, 1 duplicate)"
    assert f"\n{counted}\n" in printed  # validate
    assert f"total: {counted} in 10 calls" in printed
    assert f"Summary: {counted}," in printed
    assert f"jobs/demo.results.jsonl: {counted}" in printed
    # The plan names the line of each duplicate and the line it repeats.
    assert "jobs/demo.jsonl:9 repeats line 1" in printed


def test_failed_jobs_are_rebuilt_from_another_folder(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The results name `jobs/demo.jsonl`, relative to where the run was started."""
    _fail_later(demo, {"1100000000000000002", "880000000001"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    left = elsewhere / "left.jsonl"
    assert main(["report", str(demo), "--failed-jobs", str(left)]) == 1
    rebuilt = {(r["vendor"], r.get("msg_id") or r.get("message_server_id")) for r in _rows(left)}
    assert rebuilt == {("easemob", "1100000000000000002"), ("yunxin", "880000000001")}


def test_failed_jobs_found_where_the_manifest_recorded_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "jobs").mkdir()
    shutil.copy(SAMPLES / "demo.jsonl", tmp_path / "jobs" / "demo.jsonl")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "archive" / "demo.results.jsonl"
    main(["run", "jobs/demo.jsonl", *DEMO, "--yes", "--no-progress", "--out", str(out)])
    _fail_later(out, {"user-c|1|spammer-1"})
    monkeypatch.chdir(tmp_path / "archive")
    assert main(["report", str(out), "--failed-jobs", "left.csv"]) == 1
    with (tmp_path / "archive" / "left.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["vendor"], row["op"], row["conversation_id"]) == (
        "yunxin", "delete_conversation", "user-c|1|spammer-1"
    )  # fmt: skip


def test_all_failures_lists_every_item_not_taken_back_with_its_error(
    demo: Path, tmp_path: Path
) -> None:
    _fail_later(demo, {"1763690000002"})  # a GoEasy timestamp now left to do
    failures = tmp_path / "failures.jsonl"
    main(["report", str(demo), "--all-failures", str(failures)])
    listed = {(r["line"], r["target"], r["status"], r["error"]) for r in _rows(failures)}
    assert listed == {
        (3, "1100000000000000003", "failed", "recall-window-exceeded"),
        (5, "1100000000000000005", "failed", "recipient-not-found"),
        (13, "880000000002", "failed", "recall-window-exceeded"),
        (10, "1763690000002", "failed", "timeout"),
        (7, "", "invalid", "invalid-row"),
    }
    as_csv = tmp_path / "failures.csv"
    main(["report", str(demo), "--all-failures", str(as_csv)])
    with as_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    assert {"error", "message", "vendor_code"} <= set(rows[0])


def test_an_item_whose_only_row_is_its_duplicates_is_left_to_do(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run killed before the first of two equal rows got its answer leaves only the
    duplicate's row: the item has no outcome yet."""
    rows = [r for r in _rows(demo) if r["target"] != "1100000000000000001" or r["line"] == 9]
    demo.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    assert main(["report", str(demo)]) == 1
    assert "left to do: 1" in capsys.readouterr().out


def test_several_results_files_read_as_one_the_later_superseding(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    later = tmp_path / "later.results.jsonl"
    (row,) = [r for r in _rows(demo) if r["target"] == "1100000000000000002"]
    later.write_bytes(orjson.dumps({**row, "status": "failed", "error": "timeout"}) + b"\n")
    assert main(["report", str(demo), str(later)]) == 1
    assert main(["report", str(later), str(demo)]) == 0
    assert "17 items (and 1 invalid row, 1 duplicate)" in capsys.readouterr().out


def test_report_shows_the_runs_of_the_manifest(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    main(["report", str(demo)])
    printed = capsys.readouterr().out
    assert re.search(r"run r[0-9a-f]{8}: \S+Z to \S+Z, [\d.]+ s by \S+@\S+, exit 1", printed)


def test_html_report_is_one_file_that_answers_the_question(demo: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    main(["report", str(demo), "--html", str(page)])
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "nothing fetched"
    assert "<script" not in text
    headings = (
        "Runs",
        "Outcomes per lane",
        "Outcomes per operation",
        "Outcomes per ref",
        "Throughput over time",
        "Permanent failures",
        "Invalid rows",
        "Left to do",
    )
    for heading in headings:
        assert f"<h2>{heading}" in text, heading
    assert "exceed recall time limit" in text  # the vendor's own message
    assert "can&#x27;t find msg to" in text
    assert "field &#x27;chat_type&#x27; must be one of" in text  # the invalid row's problem
    assert text.count('class="chart"') >= 5


def test_a_resume_counts_the_job_as_the_first_run_did(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Items an earlier run settled, their repeats and invalid rows get no new row on resume,
    yet the plan, the summary and the report still count the whole job alike."""
    _fail_later(demo, {"880000000001", "1100000000000000001"})  # left to do, and repeated
    capsys.readouterr()
    assert main(["run", "jobs/demo.jsonl", *DEMO, "--yes", "--no-progress", "--resume"]) == 1
    main(["report", str(demo)])
    printed = capsys.readouterr().out
    counted = "17 items (and 1 invalid row, 1 duplicate)"
    assert f"total: {counted}; 15 already done in the results file, 2 to send" in printed
    assert f"Summary: {counted}," in printed
    assert "  settled by an earlier run: 15 items\n  this run: ok 2\n" in printed
    assert f"jobs/demo.results.jsonl: {counted}" in printed


def test_a_csv_job_of_what_is_left_has_a_column_for_every_job_field() -> None:
    """A field the CSV of what is left has no column for would be dropped, and the new run
    would ask for something else (a team recall with the member check back on)."""
    from batchrecall import catalog
    from batchrecall.intake import schema
    from batchrecall.results import report

    fields = set(schema._COMMON_FIELDS)
    for spec in catalog.vendors().values():
        for op in spec.ops.values():
            fields |= set(op.fields)
    assert fields <= set(report.job_columns())
