"""Credentials and tokens never reach logs or results; timeouts over real HTTP are retried."""

from __future__ import annotations

import io
import logging
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import structlog

from batchrecall.config import RunSettings, parse_config
from batchrecall.emulators.seeding import seed_jobs
from batchrecall.emulators.server import EmulatorSet, running_server
from batchrecall.logs import configure_logging
from batchrecall.models import JobRef
from batchrecall.results.store import read_rows
from batchrecall.run.runner import RunRequest, run_request
from tests.harness import Harness
from tests.test_engine_faults import easemob_rows, yunxin_rows


@pytest.mark.anyio
async def test_tokens_and_secrets_never_logged(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream, level=logging.DEBUG)
    harness = Harness(tmp_path)
    harness.write_job([*easemob_rows(3), *yunxin_rows(2)])
    harness.seed()
    harness.emulators.easemob.faults.push("http_503", only_path_contains="/messages/")
    outcome = await harness.run()
    tokens = harness.emulators.easemob.state.issued_tokens()
    assert tokens, "a token was issued"
    # A careless event carrying a token is masked by the processor, not by its call site.
    structlog.get_logger("batchrecall").info("batchrecall.debug_dump", header=f"Bearer {tokens[0]}")
    logged = stream.getvalue()
    assert "batchrecall.call_sent" in logged
    assert "Bearer ***" in logged
    secrets = [s.reveal() for lane in harness.config.lanes.values() for s in lane.secrets.values()]
    results = harness.out.read_text()
    for value in [*tokens, *secrets]:
        assert value not in logged
        assert value not in results
    assert {row["status"] for row in outcome.rows} == {"ok"}


@pytest.mark.anyio
async def test_answer_past_the_timeout_is_retried_over_real_http(tmp_path: Path) -> None:
    job = tmp_path / "job.jsonl"
    Harness(tmp_path).write_job(yunxin_rows(2))
    emulators = EmulatorSet()
    seed_jobs(emulators, [job])
    emulators.yunxin.faults.push("delay", delay_s=1.5)
    async with running_server(emulators) as base_url:
        raw = tomllib.loads(emulators.config_toml(base_url))
        config = parse_config(raw, environ={}, source="test")
        config = replace(
            config, run=RunSettings(concurrency=1, request_timeout_s=0.4, max_attempts=3)
        )
        out = tmp_path / "job.results.jsonl"
        request = RunRequest(
            jobs=[JobRef(path=job, name=str(job))], config=config, out=out, fmt="jsonl"
        )
        summary = await run_request(request)
    rows, _ = read_rows(out)
    by_status = sorted((row["status"], row["attempts"]) for row in rows)
    # The delayed call was carried out: its retry finds the message already recalled.
    assert by_status == [("not_found", 2), ("ok", 1)]
    assert summary.exit_code() == 0
