"""A wrong Easemob secret beside healthy GoEasy and Yunxin lanes, as an operator meets it: the
CLI in subprocesses against `batchrecall emulate` over real HTTP on a loopback port.

The Easemob lane stops on its one refused token request; the healthy lanes finish; `report
--failed-jobs` lists exactly the Easemob items; with the secret fixed, `run --resume` sends
exactly those and ends 0.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from batchrecall.results.store import read_rows

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "batchrecall"]
DEADLINE_S = 60.0
RIGHT_SECRET = "YXA6emulator-client-secret"  # what `emulate --write-config` writes
EASEMOB_IDS = [str(1_900_000_000_000_000_000 + i) for i in range(40)]


class _Emulate:
    """`batchrecall emulate --port 0` in a subprocess, its config and its request log."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.config = tmp / "rehearsal.toml"
        errors = (tmp / "emulate.stderr").open("w")
        self.process = subprocess.Popen(
            [*CLI, "emulate", "--port", "0", "--write-config", str(self.config), *args],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        errors.close()
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("Emulators serving at "), first
        self.base_url = first.split()[3]
        end = time.monotonic() + DEADLINE_S
        while not self.config.exists():  # polled, not timed: written once it listens
            assert time.monotonic() < end, "no config written"
            time.sleep(0.02)
        self.written = self.config.read_text()

    def requests(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = httpx.get(
            f"{self.base_url}/_emulator/requests", timeout=10
        ).json()
        return entries

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


@pytest.fixture
def job(tmp_path: Path) -> Path:
    rows: list[dict[str, Any]] = [
        {"vendor": "easemob", "op": "recall", "msg_id": msg_id, "to": "user-b",
         "chat_type": "chat"}
        for msg_id in EASEMOB_IDS
    ]  # fmt: skip
    rows += [
        {"vendor": "goeasy", "op": "recall", "groupId": f"group-{i}",
         "messages": [1_763_000_000_000 + i]}
        for i in range(5)
    ]  # fmt: skip
    rows += [
        {"vendor": "yunxin", "op": "recall", "conversation_id": "a|1|b",
         "message_server_id": str(990_000 + i)}
        for i in range(10)
    ]  # fmt: skip
    path = tmp_path / "cleanup.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


@pytest.fixture
def server(tmp_path: Path, job: Path) -> Iterator[_Emulate]:
    emulate = _Emulate(tmp_path, "--seed", str(job))
    yield emulate
    if emulate.process.poll() is None:
        emulate.stop()


def _configure(server: _Emulate, secret: str, halt_min_items: int) -> None:
    """The emulator's config with this Easemob secret, halting past half of `halt_min_items`."""
    assert f'"{RIGHT_SECRET}"' in server.written
    text = server.written.replace(f'"{RIGHT_SECRET}"', f'"{secret}"')
    run = f"\n[run]\nhalt_min_items = {halt_min_items}\nhalt_failure_rate = 0.5\n"
    server.config.write_text(text + run)


def _run(job: Path, server: _Emulate, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [*CLI, "run", str(job), "--config", str(server.config), "--out", str(out), "--yes",
            "--no-progress", *extra]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _latest(path: Path) -> dict[str, dict[str, Any]]:
    rows, _ = read_rows(path)
    return {str(row["item_key"]): row for row in rows}


def test_wrong_easemob_secret_stops_its_lane_only_and_resumes_once_fixed(
    tmp_path: Path, job: Path, server: _Emulate
) -> None:
    """As specified: the 40 Easemob items alone would cross the halt threshold if they
    counted; they are `skipped` / `lane-stopped`, never sent."""
    _scenario(tmp_path, job, server, halt_min_items=20, easemob={("skipped", "lane-stopped")})


def test_wrong_easemob_secret_resumes_once_fixed(
    tmp_path: Path, job: Path, server: _Emulate
) -> None:
    """The same without the halt, accepting the rows the engine writes today for a lane stopped
    before sending (`failed` / `auth-failed`): they are left to do as well."""
    _scenario(
        tmp_path,
        job,
        server,
        halt_min_items=10_000,
        easemob={("skipped", "lane-stopped"), ("failed", "auth-failed")},
    )


def _scenario(
    tmp_path: Path,
    job: Path,
    server: _Emulate,
    *,
    halt_min_items: int,
    easemob: set[tuple[str, str]],
) -> None:
    out = tmp_path / "cleanup.results.jsonl"
    _configure(server, "wrong-secret", halt_min_items)
    first = _run(job, server, out)
    output = first.stdout + first.stderr
    requests = server.requests()
    tokens = [r for r in requests if r["vendor"] == "easemob" and r["path"].endswith("/token")]
    assert [(r["status"], r["code"]) for r in tokens] == [(400, "invalid_grant")], output
    assert not [r for r in requests if r["vendor"] == "easemob" and r["items"]]
    latest = _latest(out)
    by_vendor: dict[str, Counter[tuple[str, str]]] = {}
    for row in latest.values():
        by_vendor.setdefault(row["vendor"], Counter())[(row["status"], row["error"])] += 1
    assert by_vendor["goeasy"] == {("ok", ""): 5}, output
    assert by_vendor["yunxin"] == {("ok", ""): 10}, output
    assert sum(by_vendor["easemob"].values()) == 40
    assert set(by_vendor["easemob"]) <= easemob, output
    assert {row["attempts"] for row in latest.values() if row["vendor"] == "easemob"} == {0}
    assert first.returncode == 3, output

    left = tmp_path / "left.jsonl"
    report = subprocess.run(
        [*CLI, "report", str(out), "--failed-jobs", str(left)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 1, report.stdout + report.stderr
    left_rows = [orjson.loads(line) for line in left.read_bytes().splitlines()]
    assert sorted(row["msg_id"] for row in left_rows) == EASEMOB_IDS
    assert {row["vendor"] for row in left_rows} == {"easemob"}

    _configure(server, RIGHT_SECRET, halt_min_items)
    before = len(server.requests())
    resumed = _run(job, server, out, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    resent = server.requests()[before:]
    assert {r["vendor"] for r in resent} == {"easemob"}
    assert sorted(item for r in resent for item in r["items"]) == EASEMOB_IDS
    assert {row["status"] for row in _latest(out).values()} == {"ok"}
