"""The Tencent Cloud IM sample job: in process (`make demo`) and over real HTTP against
`batchrecall emulate --write-config`, with no secret in any output."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.emulators.tencent_state import DEFAULT_SECRET_KEY
from tests.test_over_http import CLI, emulate_factory

__all__ = ["emulate_factory"]  # the fixture, shared with the other over-HTTP tests

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _outcomes(path: Path) -> dict[str, tuple[str, str]]:
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return {row["target"]: (row["status"], row["error"]) for row in rows}


def test_the_sample_rehearses_every_op_and_exits_0(tmp_path: Path) -> None:
    job = tmp_path / "tencent.jsonl"
    shutil.copy(SAMPLES / "tencent.jsonl", job)
    scenario = str(SAMPLES / "tencent.scenario.json")
    code = main(["run", str(job), "--emulate", "--emulate-scenario", scenario, "--yes",
                 "--no-progress"])  # fmt: skip
    outcomes = _outcomes(job.with_name("tencent.results.jsonl"))
    assert code == 0
    assert len(outcomes) == 19
    assert outcomes["31906_833502_1572869830"] == ("ok", "")
    assert outcomes["31907_833503_1572869831"] == ("not_found", "not-found")  # never existed
    assert outcomes["31908_833504_1572869832"] == ("not_found", "not-found")  # past roaming
    assert outcomes["@TGS#2J4SZEAEL#110"] == ("ok", "")
    assert outcomes["@TGS#2J4SZEAEL#111"] == ("not_found", "not-found")
    assert outcomes["user-e/1472765512_1000001_1697790495"] == ("ok", "")
    assert outcomes["user-b/spammer-1"] == outcomes["user-b/@TGS#2J4SZEAEL"] == ("ok", "")


@pytest.mark.slow
def test_a_rehearsal_over_http_with_the_written_config(
    tmp_path: Path, emulate_factory: Any
) -> None:
    job = SAMPLES / "tencent.jsonl"
    server = emulate_factory("--seed", str(job))
    assert "/tencent" in server.banner[0]
    assert "none for Tencent IM" in "".join(server.banner)
    config = tomllib.loads(server.config.read_text())
    lane = config["tencent"]["default"]
    assert lane["base_url"] == f"{server.base_url}/tencent"
    assert (lane["sdkappid"], lane["identifier"], lane["rate"]) == (
        1400000000,
        "administrator",
        100,
    )
    out = tmp_path / "out.results.jsonl"
    log = tmp_path / "run.log"
    outputs = []
    for args in (
        [*CLI, "plan", str(job), "--config", str(server.config)],
        [*CLI, "run", str(job), "--config", str(server.config), "--out", str(out), "--yes",
         "--no-progress", "--log-format", "json", "--log-file", str(log)],
        [*CLI, "report", str(out)],
    ):  # fmt: skip
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        outputs += [done.stdout, done.stderr]
    statuses = {status for status, _ in _outcomes(out).values()}
    assert statuses == {"ok"}
    sent = [r for r in server.requests() if r["vendor"] == "tencent"]
    assert {r["path"] for r in sent} == {
        "/v4/openim/admin_msgwithdraw",
        "/v4/group_open_http_svc/group_msg_recall",
        "/v4/openim/delete_c2c_msg_ramble",
        "/v4/recentcontact/delete",
    }
    usersigs = {r["query"]["usersig"] for r in sent}
    printed = "\n".join([*outputs, log.read_text(), out.read_text()])
    for secret in (DEFAULT_SECRET_KEY, *usersigs):
        assert secret not in printed
