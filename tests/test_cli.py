"""The command line end to end, against the in-process emulators (`--emulate`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from batchrecall.cli.main import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEMO_ARGS = ["--emulate", "--emulate-scenario", str(SAMPLES / "demo.scenario.json")]


def _rows(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _by_target(rows: list[dict[str, object]]) -> dict[str, tuple[object, object]]:
    return {str(r["target"]): (r["status"], r["error"]) for r in rows if r["target"]}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    job = tmp_path / "demo.jsonl"
    shutil.copy(SAMPLES / "demo.jsonl", job)
    return job


def test_demo_run_gives_every_item_its_outcome(demo: Path) -> None:
    code = main(["run", str(demo), *DEMO_ARGS, "--yes", "--no-progress"])
    rows = _rows(demo.with_name("demo.results.jsonl"))
    outcome = _by_target(rows)
    assert code == 1  # the demo fails some items on purpose
    assert outcome["1100000000000000002"] == ("ok", "")
    assert outcome["1100000000000000003"] == ("failed", "recall-window-exceeded")
    assert outcome["1100000000000000004"] == ("not_found", "not-found")
    assert outcome["1100000000000000005"] == ("failed", "recipient-not-found")
    assert outcome["1100000000000000006"] == ("ok", "")  # force: past the storage period
    assert outcome["user-b/spammer-1"] == ("ok", "")
    assert outcome["1763690000002"] == ("ok", "")
    assert outcome["880000000002"] == ("failed", "recall-window-exceeded")
    assert outcome["user-c|1|spammer-1"] == ("ok", "")
    invalid = [r for r in rows if r["status"] == "invalid"]
    assert [r["line"] for r in invalid] == [7]
    duplicates = [r for r in rows if r["error"] == "duplicate"]
    assert [(r["line"], r["status"], r["attempts"]) for r in duplicates] == [(9, "skipped", 0)]
    # One row per item: 16 usable rows hold 18 items, plus the invalid row.
    assert len(rows) == 19
    assert len({r["item_key"] for r in rows}) == 18


def test_csv_twin_gives_the_same_outcomes(tmp_path: Path, demo: Path) -> None:
    job = tmp_path / "demo.csv"
    shutil.copy(SAMPLES / "demo.csv", job)
    main(["run", str(demo), *DEMO_ARGS, "--yes", "--no-progress"])
    main(["run", str(job), *DEMO_ARGS, "--yes", "--no-progress", "--format", "csv"])
    from_jsonl = _by_target(_rows(demo.with_name("demo.results.jsonl")))
    csv_text = job.with_name("demo.results.csv").read_text().splitlines()
    header = csv_text[0].split(",")
    assert header[:3] == ["job", "line", "index"]
    target, status, error = (header.index(c) for c in ("target", "status", "error"))
    import csv

    parsed = list(csv.reader(csv_text[1:]))
    from_csv = {row[target]: (row[status], row[error]) for row in parsed if row[target]}
    assert from_csv == from_jsonl


def test_existing_results_are_never_overwritten_without_a_flag(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = demo.with_name("demo.results.jsonl")
    out.write_text("keep me\n")
    assert main(["run", str(demo), *DEMO_ARGS, "--yes", "--no-progress"]) == 2
    assert out.read_text() == "keep me\n"
    assert "--resume" in capsys.readouterr().err


def test_dry_run_sends_and_writes_nothing(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(demo), *DEMO_ARGS, "--dry-run"]) == 0
    assert not demo.with_name("demo.results.jsonl").exists()
    printed = capsys.readouterr().out
    # One batch of plain recalls and one of forced ones: a batch never names a message twice.
    assert "recall               6 items in 2 calls" in printed
    assert "Dry run" in printed


def test_without_a_terminal_run_needs_yes(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(demo), *DEMO_ARGS, "--no-progress"]) == 2
    assert not demo.with_name("demo.results.jsonl").exists()
    assert "--yes" in capsys.readouterr().err


def test_a_clean_job_exits_zero(tmp_path: Path) -> None:
    job = tmp_path / "clean.jsonl"
    job.write_text(
        '{"vendor":"easemob","op":"recall","msg_id":"1","to":"u","chat_type":"chat"}\n'
        '{"vendor":"easemob","op":"recall","msg_id":"1","to":"u","chat_type":"chat"}\n'
    )
    assert main(["run", str(job), "--emulate", "--yes", "--no-progress"]) == 0


def test_empty_job_is_not_an_error(tmp_path: Path) -> None:
    job = tmp_path / "empty.jsonl"
    job.write_text("\n\n")
    assert main(["run", str(job), "--emulate", "--yes", "--no-progress"]) == 0


def test_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('{"vendor":"goeasy","op":"recall","groupId":"g","messages":[1,2]}\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"vendor":"goeasy","op":"recall","groupId":"g"}\n{oops\n')
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(bad)]) == 1
    printed = capsys.readouterr().out
    assert f"{bad}:1:" in printed
    assert f"{bad}:2:" in printed
    assert main(["validate", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["validate", str(tmp_path)]) == 2


def test_config_error_names_the_key_and_sends_nothing(
    tmp_path: Path, demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "batchrecall.toml"
    config.write_text(
        '[easemob.default]\nbase_url = "https://a1.easemob.com"\norg_name = "o"\n'
        'app_name = "a"\nclient_id = "id"\nclient_secret = "env:BR_TEST_UNSET_SECRET"\n'
    )
    code = main(["run", str(demo), "--config", str(config), "--yes", "--no-progress"])
    assert code == 2
    assert "easemob.default.client_secret" in capsys.readouterr().err
    assert not demo.with_name("demo.results.jsonl").exists()


def test_missing_lane_in_config_is_a_config_error(
    tmp_path: Path, demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BR_TEST_SECRET", "s3cret-value")
    config = tmp_path / "batchrecall.toml"
    config.write_text(
        '[easemob.default]\nbase_url = "https://a1.easemob.com"\norg_name = "o"\n'
        'app_name = "a"\nclient_id = "id"\nclient_secret = "env:BR_TEST_SECRET"\n'
    )
    code = main(["run", str(demo), "--config", str(config), "--yes", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "[goeasy.default]" in err or "[yunxin.default]" in err
    assert "s3cret-value" not in err


def test_report_writes_what_is_left_and_html(tmp_path: Path, demo: Path) -> None:
    main(["run", str(demo), *DEMO_ARGS, "--yes", "--no-progress"])
    results = demo.with_name("demo.results.jsonl")
    left = tmp_path / "left.jsonl"
    page = tmp_path / "report.html"
    code = main(["report", str(results), "--failed-jobs", str(left), "--html", str(page)])
    assert code == 0  # every failure of the demo is permanent: nothing is left to do
    assert left.read_text() == ""
    assert "<svg" in page.read_text()


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path: Path) -> None:
    """`validate big.jsonl | head`: the pipe closes under us; no traceback, exit 1."""
    job = tmp_path / "bad.jsonl"
    job.write_text('{"vendor": "x"}\n' * 20_000)
    done = subprocess.run(
        f"{sys.executable} -m batchrecall.cli.main validate {job} | head -n 1",
        shell=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr, done.stderr
