"""Several processes on one vendor app: one rate shared through a real Redis, and sharded runs.

Each test serves the emulators over loopback in a subprocess (`batchrecall emulate`, which
enforces the vendor's sliding 1-second limit when given `--rate`) and runs `batchrecall run`
in subprocesses, as operators on several hosts would.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.intake.reader import read_job
from tests.redis_server import RedisServer, in_ci, redis_server_binary
from tests.test_over_http import CLI, Emulate, _wait_for

pytestmark = pytest.mark.slow

RATE = 10


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    if redis_server_binary() is None and not in_ci():
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Emulate]]:
    started: list[Emulate] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.stop()


def yunxin_job(path: Path, n: int) -> Path:
    rows = [
        {
            "vendor": "yunxin",
            "op": "recall",
            "conversation_id": f"a|1|b{i % 7}",
            "message_server_id": str(440_000_000 + i),
        }
        for i in range(n)
    ]
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def shared_config(server: Emulate, redis: RedisServer, rate: float) -> Path:
    text = server.config.read_text().replace("rate = ", "# rate = ")
    for vendor in ("easemob", "goeasy", "yunxin"):
        text = text.replace(f"[{vendor}.default]", f"[{vendor}.default]\nrate = {rate}")
    text += f'\n[limits]\nbackend = "redis"\nurl = "{redis.url}"\nunavailable_timeout_s = 30\n'
    server.config.write_text(text)
    return server.config


def run_args(job: Path, config: Path, out: Path, *extra: str) -> list[str]:
    return [*CLI, "run", str(job), "--config", str(config), "--out", str(out), "--yes",
            "--no-progress", *extra]  # fmt: skip


def item_requests(server: Emulate, vendor: str) -> list[dict[str, Any]]:
    return [r for r in server.requests() if r["vendor"] == vendor and r["items"]]


def busiest_second(times: list[float]) -> int:
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def latest_rows(paths: list[Path]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for path in paths:
        for line in path.read_bytes().splitlines():
            row = orjson.loads(line)
            latest[row["item_key"]] = row
    return latest


def test_three_processes_share_one_lanes_rate_through_redis(
    tmp_path: Path, redis: RedisServer, servers: list[Emulate]
) -> None:
    job = yunxin_job(tmp_path / "job.jsonl", 60)
    server = Emulate(tmp_path, "--seed", str(job), "--rate", f"yunxin={RATE}")
    servers.append(server)
    config = shared_config(server, redis, RATE)
    outs = [tmp_path / f"shard-{i}.results.jsonl" for i in range(1, 4)]
    runs = [
        subprocess.Popen(
            run_args(job, config, out, "--shard", f"{i}/3"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, out in enumerate(outs, start=1)
    ]
    for run in runs:
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stdout + stderr
    requests = item_requests(server, "yunxin")
    assert not [r for r in requests if r["code"] == 416], "no throttle answer"
    assert busiest_second([r["time"] for r in requests]) <= RATE
    latest = latest_rows(outs)
    assert set(latest) == {row.item_key for row in read_job(job)}
    assert {row["status"] for row in latest.values()} == {"ok"}
    assert len(requests) == 60, "every item sent once"


def test_a_redis_restart_mid_run_loses_nothing_and_keeps_the_window(
    tmp_path: Path, redis: RedisServer, servers: list[Emulate]
) -> None:
    job = yunxin_job(tmp_path / "job.jsonl", 50)
    server = Emulate(tmp_path, "--seed", str(job), "--rate", f"yunxin={RATE}")
    servers.append(server)
    config = shared_config(server, redis, RATE)
    out = tmp_path / "job.results.jsonl"
    run = subprocess.Popen(
        run_args(job, config, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 10, "10 rows")
    redis.kill()
    redis.start()  # empty: it forgot every window
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stdout + stderr
    requests = item_requests(server, "yunxin")
    assert not [r for r in requests if r["code"] == 416]
    assert busiest_second([r["time"] for r in requests]) <= RATE
    latest = latest_rows([out])
    assert len(latest) == 50
    assert {row["status"] for row in latest.values()} == {"ok"}


def test_four_shards_of_a_large_job_run_at_once_and_report_as_one(
    tmp_path: Path, servers: list[Emulate]
) -> None:
    n = 100_000
    job = tmp_path / "big.jsonl"
    rows = (
        {
            "vendor": "easemob",
            "op": "recall",
            "msg_id": str(1_500_000_000_000_000_000 + i),
            "to": f"user-{i % 97}",
            "chat_type": "chat",
        }
        for i in range(n)
    )
    job.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    server = Emulate(tmp_path, "--seed", str(job))
    servers.append(server)
    outs = [tmp_path / f"big.shard-{i}-of-4.results.jsonl" for i in range(1, 5)]
    runs = [
        subprocess.Popen(
            run_args(job, server.config, out, "--shard", f"{i}/4", "--rate", "easemob=400"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, out in enumerate(outs, start=1)
    ]
    for run in runs:
        stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stdout + stderr
    keys: Counter[str] = Counter()
    for out in outs:
        for line in out.read_bytes().splitlines():
            keys[orjson.loads(line)["item_key"]] += 1
    assert len(keys) == n
    assert set(keys.values()) == {1}, "every item settled exactly once"
    report = subprocess.run(
        [*CLI, "report", *map(str, outs)], capture_output=True, text=True, timeout=120
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert f"{n:,} items" in report.stdout
    assert "ok         100,000" in report.stdout
    assert "left to do: 0" in report.stdout
