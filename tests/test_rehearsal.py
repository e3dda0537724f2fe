"""`batchrecall emulate` as a rehearsal: a lane for every app the seeded jobs name, an emulator
stricter than the config it writes, a recall window that outlasts reading the plan."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.results.store import read_rows
from tests.test_over_http import CLI, Emulate, emulate_factory

servers = emulate_factory  # one emulator fixture for both files

pytestmark = pytest.mark.slow


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _run(job: Path, server: Emulate, out: Path) -> subprocess.CompletedProcess[str]:
    args = [*CLI, "run", str(job), "--config", str(server.config), "--out", str(out), "--yes",
            "--no-progress"]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_every_app_a_seeded_job_names_gets_a_lane(tmp_path: Path, servers: Any) -> None:
    job = _write(
        tmp_path / "prod.jsonl",
        [
            {"vendor": "easemob", "op": "recall", "app": "prod", "msg_id": "1", "to": "u",
             "chat_type": "chat"},
            {"vendor": "yunxin", "op": "recall", "app": "eu", "conversation_id": "a|1|b",
             "message_server_id": "7"},
            {"vendor": "goeasy", "op": "recall", "groupId": "g", "messages": [5]},
        ],
    )  # fmt: skip
    server = servers("--seed", str(job))
    config = tomllib.loads(server.config.read_text())
    assert set(config["easemob"]) == {"default", "prod"}
    assert set(config["yunxin"]) == {"default", "eu"}
    out = tmp_path / "prod.results.jsonl"
    done = _run(job, server, out)
    assert done.returncode == 0, done.stdout + done.stderr
    rows, _ = read_rows(out)
    assert {(row["app"], row["status"]) for row in rows} == {
        ("prod", "ok"), ("eu", "ok"), ("default", "ok")
    }  # fmt: skip


def test_a_stricter_emulator_throttles_a_rehearsal_at_the_default_rates(
    tmp_path: Path, servers: Any
) -> None:
    job = _write(
        tmp_path / "groups.jsonl",
        [
            {"vendor": "goeasy", "op": "recall", "groupId": f"g{i}", "messages": [i + 1]}
            for i in range(5)
        ],
    )
    server = servers("--seed", str(job), "--rate", "goeasy=2")
    assert tomllib.loads(server.config.read_text())["goeasy"]["default"]["rate"] == 10
    out = tmp_path / "groups.results.jsonl"
    done = _run(job, server, out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(throttled " in done.stdout
    throttled = [e for e in server.requests() if e["status"] == 429]
    assert throttled, "the emulator answered 429 to a lane at its default rate"


def test_the_recall_window_is_printed_and_outlasts_reading_the_plan(
    tmp_path: Path, servers: Any
) -> None:
    job = _write(
        tmp_path / "one.jsonl",
        [{"vendor": "easemob", "op": "recall", "msg_id": "1", "to": "u", "chat_type": "chat"}],
    )
    server = servers("--seed", str(job))
    (window,) = [line for line in server.banner if line.startswith("Recall window: ")]
    assert window.startswith("Recall window: 1 h for Easemob and Yunxin (seeded messages")
