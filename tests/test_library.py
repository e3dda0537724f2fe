"""`batchrecall.run_job` from Python: the same run as the command line, returning its summary."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

import batchrecall
from batchrecall.emulators import EmulatorSet
from batchrecall.emulators.seeding import seed_jobs
from batchrecall.errors import UsageError
from tests.test_stops import yunxin_rows


def test_run_job_sends_a_job_and_returns_its_summary(tmp_path: Path) -> None:
    job = tmp_path / "job.jsonl"
    job.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in yunxin_rows(5)))
    emulators = EmulatorSet()
    seed_jobs(emulators, [job])
    config_file = tmp_path / "batchrecall.toml"
    config_file.write_text(emulators.config_toml("http://127.0.0.1"))
    config = batchrecall.load_config(str(config_file))
    transport = httpx.ASGITransport(app=emulators.app)

    summary = batchrecall.run_job([job], config, transport=transport)
    assert summary.statuses == {"ok": 5}
    assert summary.exit_code() is batchrecall.ExitCode.OK
    out = tmp_path / "job.results.jsonl"
    assert len(out.read_bytes().splitlines()) == 5

    with pytest.raises(UsageError, match="exists"):
        batchrecall.run_job([job], config, transport=transport)
    again = batchrecall.run_job([job], config, out, resume=True, transport=transport)
    assert again.items_this_run == 0, "a resume of a finished job sends nothing"
