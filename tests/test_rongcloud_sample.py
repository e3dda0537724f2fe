"""RongCloud's sample job as a user runs it: in process (`--emulate`), its CSV twin, and over
real HTTP against `batchrecall emulate --write-config`, without its secret in any output."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from tests.test_over_http import CLI, _latest, _run_args, emulate_factory

__all__ = ["emulate_factory"]  # the fixture, used below by name

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SCENARIO = ["--emulate", "--emulate-scenario", str(SAMPLES / "demo.scenario.json")]
EXPECTED = {
    "5FGT-7VA9-G4DD-4V5P": ("ok", ""),
    "5FGT-7VA9-G4DD-4V5Q": ("ok", ""),
    "5FGT-7VA9-G4DD-4V5R": ("not_found", "not-found"),  # the scenario: absent
    "user-b/1/spammer-1": ("ok", ""),
}


def _outcomes(path: Path) -> dict[str, tuple[Any, Any]]:
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return {str(r["target"]): (r["status"], r["error"]) for r in rows if r["target"]}


def test_the_sample_and_its_csv_twin(tmp_path: Path) -> None:
    for name in ("rongcloud.jsonl", "rongcloud.csv"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    jsonl, csv_job = tmp_path / "rongcloud.jsonl", tmp_path / "rongcloud.csv"
    assert main(["run", str(jsonl), *SCENARIO, "--yes", "--no-progress"]) == 1  # a bad row
    assert main(["run", str(csv_job), *SCENARIO, "--yes", "--no-progress", "--format", "csv"]) == 1
    assert _outcomes(tmp_path / "rongcloud.results.jsonl") == EXPECTED
    with (tmp_path / "rongcloud.results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["target"]: (r["status"], r["error"]) for r in rows if r["target"]} == EXPECTED
    assert [r["status"] for r in rows].count("invalid") == 1


@pytest.mark.slow
def test_a_rehearsal_over_real_http(tmp_path: Path, emulate_factory: Any) -> None:
    job = SAMPLES / "rongcloud.jsonl"
    server = emulate_factory("--seed", str(job), "--scenario", str(SAMPLES / "demo.scenario.json"))
    assert any("/rongcloud" in line for line in server.banner[:1])
    text = server.config.read_text()
    assert "[rongcloud.default]" in text
    secret = "emulatorrongsecret"
    assert f'app_secret = "{secret}"' in text
    server.config.write_text(text.replace(f'"{secret}"', '"env:BR_RONGCLOUD_SECRET"'))
    out = tmp_path / "rc.results.jsonl"
    log = tmp_path / "run.log"
    env = {**os.environ, "BR_RONGCLOUD_SECRET": secret}
    done = subprocess.run(
        _run_args(job, server, out, "--log-format", "json", "--log-file", str(log)),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the sample's invalid row
    latest = _latest(out)
    assert {
        row["target"]: (row["status"], row["error"]) for row in latest.values() if row["target"]
    } == EXPECTED
    assert Counter(row["status"] for row in latest.values())["invalid"] == 1
    entries = server.requests()
    assert {entry["vendor"] for entry in entries} == {"rongcloud"}
    assert {entry["path"] for entry in entries} == {
        "/message/recall.json",
        "/conversation/message/history/clean.json",
    }
    report = subprocess.run([*CLI, "report", str(out)], capture_output=True, text=True, timeout=60)
    everything = "\n".join([done.stdout, done.stderr, report.stdout, report.stderr,
                            out.read_text(), log.read_text()])  # fmt: skip
    assert secret not in everything


def test_collect_rongcloud_without_a_config_says_so_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "found.jsonl"
    code = main(
        ["collect", "rongcloud", "--sender", "spammer-1", "--since", "2h", "--out", str(out)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "config file not found" in err
    assert "Traceback" not in err
    assert not out.exists()
