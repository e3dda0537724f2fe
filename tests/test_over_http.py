"""The CLI as a user runs it: subprocesses against `batchrecall emulate` on a loopback port."""

from __future__ import annotations

import os
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


def _wait_for(predicate: Any, what: str) -> None:
    """Poll a condition (not a timing assumption) until it holds, or fail after a deadline."""
    end = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


class Emulate:
    """`batchrecall emulate --port 0` in a subprocess; the base URL read from its first line."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.config = tmp / "rehearsal.toml"
        self.errors = tmp / "emulate.stderr"
        with self.errors.open("w") as errors:  # a file, so that a full pipe never blocks it
            self.process = subprocess.Popen(
                [*CLI, "emulate", "--port", "0", "--write-config", str(self.config), *args],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("Emulators serving at "), first + self.errors.read_text()
        self.base_url = first.split()[3]
        self.banner = [first]
        # The lines it printed up to the one saying the config file is whole.
        while not self.banner[-1].startswith("Wrote a config"):
            self.banner.append(self.process.stdout.readline())
            assert self.banner[-1], self.errors.read_text()

    def requests(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.base_url}/_emulator/requests", timeout=10)
        entries: list[dict[str, Any]] = answer.json()
        return entries

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


@pytest.fixture
def emulate_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Emulate] = []

    def start(*args: str) -> Emulate:
        server = Emulate(tmp_path, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.stop()


def _yunxin_job(path: Path, n: int) -> Path:
    lines = [
        orjson.dumps(
            {
                "vendor": "yunxin",
                "op": "recall",
                "conversation_id": "a|1|b",
                "message_server_id": str(550_000_000 + i),
            }
        )
        for i in range(n)
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _run_args(job: Path, server: Emulate, out: Path, *extra: str) -> list[str]:
    """`batchrecall run` of `job` against `server`, unattended."""
    return [*CLI, "run", str(job), "--config", str(server.config), "--out", str(out), "--yes",
            "--no-progress", *extra]  # fmt: skip


def _latest(path: Path) -> dict[str, dict[str, Any]]:
    rows, _ = read_rows(path)
    return {str(row["item_key"]): row for row in rows}


def test_demo_job_over_real_http(tmp_path: Path, emulate_factory: Any) -> None:
    job = Path(__file__).resolve().parent.parent / "samples" / "demo.jsonl"
    server = emulate_factory("--seed", str(job))
    out = tmp_path / "demo.results.jsonl"
    done = subprocess.run(
        _run_args(job, server, out),
        capture_output=True,
        text=True,
        timeout=120,
    )
    latest = _latest(out)
    statuses = Counter(row["status"] for row in latest.values())
    # Seeded "sent just now": everything succeeds but the invalid row; the duplicate's own
    # row never hides the outcome of the item it repeats.
    assert statuses == {"ok": 17, "invalid": 1}, done.stdout + done.stderr
    assert done.returncode == 1
    vendors = Counter(entry["vendor"] for entry in server.requests())
    assert set(vendors) == {"easemob", "goeasy", "yunxin"}


def test_killed_run_resumes_and_resends_at_most_what_was_in_flight(
    tmp_path: Path, emulate_factory: Any
) -> None:
    job = _yunxin_job(tmp_path / "big.jsonl", 240)
    server = emulate_factory("--seed", str(job), "--latency-ms", "20")
    out = tmp_path / "big.results.jsonl"
    concurrency = 4
    args = _run_args(job, server, out, "--concurrency", str(concurrency))
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 40, "40 result rows")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    rows_before = out.read_bytes().count(b"\n")
    assert rows_before < 240, "the run was killed before it finished"
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    latest = _latest(out)
    assert len(latest) == 240
    assert {row["status"] for row in latest.values()} <= {"ok", "not_found"}
    sent = Counter(item for entry in server.requests() for item in entry["items"])
    sent_twice = [item for item, n in sent.items() if n > 1]
    assert len(sent_twice) <= concurrency
    assert len(sent) == 240


def test_first_sigint_drains_and_prints_the_resume_command(
    tmp_path: Path, emulate_factory: Any
) -> None:
    job = _yunxin_job(tmp_path / "slow.jsonl", 200)
    server = emulate_factory("--seed", str(job), "--latency-ms", "20")
    out = tmp_path / "slow.results.jsonl"
    run = subprocess.Popen(
        _run_args(job, server, out, "--concurrency", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 10, "10 result rows")
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stdout + stderr
    latest = _latest(out)
    counts = Counter((row["status"], row["error"]) for row in latest.values())
    assert counts[("skipped", "interrupted")] > 0, "what the lane held"
    assert set(counts) <= {("ok", ""), ("skipped", "interrupted")}
    # What the lane had not read is left to do, without a row; the summary counts it.
    left = 200 - len(latest)
    assert left > 0
    assert f"left to do: {left:,} item{'s' if left > 1 else ''} not read before the stop" in stdout
    (command,) = [line for line in stdout.splitlines() if line.startswith("To continue: ")]
    assert command.endswith(f"--out {out} --yes --no-progress --concurrency 2 --resume")


def test_no_secret_reaches_any_output(tmp_path: Path, emulate_factory: Any) -> None:
    job = Path(__file__).resolve().parent.parent / "samples" / "demo.jsonl"
    server = emulate_factory("--seed", str(job))
    text = server.config.read_text()
    secrets = {
        "client_secret": "YXA6emulator-client-secret",
        "appkey": "BC-emulator-common-key",
        "app_secret": "emulatorsecret",
    }
    for name, value in secrets.items():
        assert value in text, f"the emulator config holds {name}"
    secret_file = tmp_path / "yunxin.secret"
    secret_file.write_text(secrets["app_secret"] + "\n")
    text = text.replace(f'"{secrets["client_secret"]}"', '"env:BR_EASEMOB_SECRET"')
    text = text.replace(f'"{secrets["appkey"]}"', '"env:BR_GOEASY_KEY"')
    text = text.replace(f'"{secrets["app_secret"]}"', f'"file:{secret_file}"')
    server.config.write_text(text)
    env = {
        **os.environ,
        "BR_EASEMOB_SECRET": secrets["client_secret"],
        "BR_GOEASY_KEY": secrets["appkey"],
    }
    out = tmp_path / "out.results.jsonl"
    log = tmp_path / "run.log"
    html = tmp_path / "report.html"
    outputs = []
    for args in (
        [*CLI, "plan", str(job), "--config", str(server.config)],
        _run_args(job, server, out, "--log-format", "json", "--log-file", str(log)),
        [*CLI, "report", str(out), "--html", str(html), "--failed-jobs", str(tmp_path / "l.jsonl")],
    ):
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
        outputs += [done.stdout, done.stderr]
    broken = {k: v for k, v in env.items() if k != "BR_GOEASY_KEY"}
    done = subprocess.run(
        [*CLI, "run", str(job), "--config", str(server.config), "--yes", "--dry-run"],
        capture_output=True,
        text=True,
        env=broken,
        timeout=60,
    )
    assert done.returncode == 2
    assert "goeasy.default.appkey" in done.stderr
    outputs += [done.stdout, done.stderr]
    files = [out, log, html, tmp_path / "l.jsonl"]
    assert log.read_text(), "the run logged events"
    everything = "\n".join(outputs + [f.read_text() for f in files])
    for value in secrets.values():
        assert value not in everything
