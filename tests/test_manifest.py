"""The audit manifest beside a results file: written at start and end, atomically; a resume adds
a run; secrets appear only as their references."""

from __future__ import annotations

import getpass
import hashlib
import shutil
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.config import load_config
from batchrecall.models import JobRef
from batchrecall.results.manifest import (
    Manifest,
    describe_config,
    job_facts,
    manifest_path,
    read_manifest,
)
from batchrecall.results.summary import Summary

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEMO = ["--emulate", "--emulate-scenario", str(SAMPLES / "demo.scenario.json")]


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    job = tmp_path / "demo.jsonl"
    shutil.copy(SAMPLES / "demo.jsonl", job)
    return job


def _manifest(results: Path) -> dict[str, Any]:
    return read_manifest(manifest_path(results))


def test_a_run_records_what_was_run_by_whom_and_what_came_of_it(demo: Path) -> None:
    code = main(["run", str(demo), *DEMO, "--yes", "--no-progress"])
    results = demo.with_name("demo.results.jsonl")
    manifest = _manifest(results)
    assert manifest["results"] == str(results)
    (run,) = manifest["runs"]
    assert run["tool"] == "batchrecall"
    assert run["version"]
    assert run["run_id"].startswith("r")
    assert run["command"] == ["batchrecall", "run", str(demo), *DEMO, "--yes", "--no-progress"]
    assert run["operator"] == {"user": getpass.getuser(), "host": socket.gethostname()}
    assert run["started_at"].endswith("Z")
    assert run["finished_at"].endswith("Z")
    assert run["started_at"] <= run["finished_at"]
    (job,) = run["jobs"]
    assert job["sha256"] == hashlib.sha256(demo.read_bytes()).hexdigest()
    assert (job["name"], job["rows"], job["path"]) == (str(demo), 17, str(demo.resolve()))
    assert run["exit_code"] == code == 1
    counts = run["counts"]
    assert (counts["items"], counts["invalid_rows"], counts["duplicates"]) == (17, 1, 1)
    assert counts["statuses"] == {"ok": 13, "not_found": 1, "failed": 3}
    assert counts["lanes"]["goeasy.default"] == {"ok": 4}
    assert run["plan"]["items"] == 17
    assert run["config"]["lanes"]["easemob.default"]["client_secret"] == "***"
    assert not list(demo.parent.glob("*.tmp")), "no temporary file is left behind"


def test_resume_appends_a_run_and_overwrite_starts_afresh(demo: Path) -> None:
    results = demo.with_name("demo.results.jsonl")
    main(["run", str(demo), *DEMO, "--yes", "--no-progress"])
    main(["run", str(demo), *DEMO, "--yes", "--no-progress", "--resume"])
    first, second = _manifest(results)["runs"]
    assert (first["resume"], second["resume"]) == (False, True)
    assert first["run_id"] != second["run_id"]
    # Every item was settled by the first run: none is sent again, and the job counts the same.
    assert second["counts"]["items_this_run"] == 0
    counts = second["counts"]
    assert (counts["items"], counts["invalid_rows"], counts["duplicates"]) == (17, 1, 1)
    main(["run", str(demo), *DEMO, "--yes", "--no-progress", "--overwrite"])
    assert len(_manifest(results)["runs"]) == 1


def test_the_start_is_on_disk_before_anything_is_sent(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed mid-way still leaves its start: the entry is written before the run."""
    monkeypatch.setenv("BR_TEST_EASEMOB", "the-easemob-secret")
    manifest = Manifest(tmp_path / "out.results.jsonl", append=False)
    config = load_config(_config_file(tmp_path))
    manifest.start(
        run_id="r1",
        command=["batchrecall", "run"],
        jobs=[JobRef(path=demo, name="demo.jsonl")],
        config=config,
        resume=False,
        emulated=False,
        plan={"items": 17},
    )
    (run,) = read_manifest(manifest.path)["runs"]
    assert (run["run_id"], run["finished_at"]) == ("r1", None)
    summary = Summary()
    manifest.finish(summary, 0)
    (run,) = read_manifest(manifest.path)["runs"]
    assert run["exit_code"] == 0
    assert run["finished_at"]


def _config_file(tmp_path: Path) -> Path:
    secret_file = tmp_path / "yunxin.secret"
    secret_file.write_text("the-yunxin-secret\n")
    config = tmp_path / "batchrecall.toml"
    config.write_text(
        '[run]\nconcurrency = 8\n\n'
        '[easemob.default]\nbase_url = "https://a1.easemob.com"\norg_name = "o"\n'
        'app_name = "a"\nclient_id = "id"\nclient_secret = "env:BR_TEST_EASEMOB"\n\n'
        '[goeasy.default]\nbase_url = "https://rest-hz.goeasy.io"\nappkey = "BC-literal-key"\n\n'
        f'[yunxin.default]\nbase_url = "https://open.yunxinapi.com"\napp_key = "k"\n'
        f'app_secret = "file:{secret_file}"\nrate = 20\n'
    )  # fmt: skip
    return config


def test_the_effective_config_shows_secrets_only_by_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BR_TEST_EASEMOB", "the-easemob-secret")
    config_file = _config_file(tmp_path)
    described = describe_config(load_config(config_file))
    lanes = described["lanes"]
    assert lanes["easemob.default"]["client_secret"] == "env:BR_TEST_EASEMOB"
    assert lanes["yunxin.default"]["app_secret"] == f"file:{tmp_path / 'yunxin.secret'}"
    assert lanes["goeasy.default"]["appkey"] == "***"
    assert lanes["yunxin.default"]["rate"] == 20.0
    assert described["run"]["concurrency"] == 8
    text = orjson.dumps(described).decode()
    for secret in ("the-easemob-secret", "the-yunxin-secret", "BC-literal-key"):
        assert secret not in text


def test_job_facts_count_rows_not_lines(tmp_path: Path) -> None:
    job = tmp_path / "job.csv"
    job.write_text("vendor,op,groupId,messages\ngoeasy,recall,g,1;2\n\ngoeasy,recall,g,3\n")
    facts = job_facts(JobRef(path=job, name="job.csv"))
    assert facts["rows"] == 2  # the header and the blank line are no rows
    assert facts["bytes"] == job.stat().st_size


def test_an_unreadable_manifest_is_kept_aside_not_lost(demo: Path) -> None:
    results = demo.with_name("demo.results.jsonl")
    main(["run", str(demo), *DEMO, "--yes", "--no-progress"])
    manifest_path(results).write_text("{broken")
    main(["run", str(demo), *DEMO, "--yes", "--no-progress", "--resume"])
    assert len(_manifest(results)["runs"]) == 1
    kept = manifest_path(results).with_name(manifest_path(results).name + ".unreadable")
    assert kept.read_text() == "{broken"
