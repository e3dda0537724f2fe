"""Several `batchrecall run` processes sharing one lane's rate through Redis, against the
emulator enforcing that same rate: what they achieve together and the throttles they cause.

    .venv/bin/python -m benchmarks.shared_run [--rate 100] [--items 600]

For 1, 2 and 4 processes (each a shard of one Yunxin job), one run each: items done a second
against the limit, throttle answers (Yunxin 416) and the busiest sliding 1-second window the
emulator saw. Achieved is requests a second from the first request to the last, against the
limit; it may pass 1.0 by a little, as the first and last second of a run are partial windows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from tests.redis_server import RedisServer, redis_server_binary
from tests.test_over_http import CLI, Emulate
from tests.test_scale_out import busiest_second, shared_config, yunxin_job


def _measure(folder: Path, redis: RedisServer, processes: int, rate: int, items: int) -> str:
    folder.mkdir()
    job = yunxin_job(folder / "job.jsonl", items)
    server = Emulate(folder, "--seed", str(job), "--rate", f"yunxin={rate}")
    try:
        config = shared_config(server, redis, rate)
        outs = [folder / f"shard-{i}.results.jsonl" for i in range(1, processes + 1)]
        start = time.monotonic()
        runs = [
            subprocess.Popen(
                [
                    *CLI,
                    "run",
                    str(job),
                    "--config",
                    str(config),
                    "--out",
                    str(out),
                    "--yes",
                    "--no-progress",
                    "--shard",
                    f"{i}/{processes}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i, out in enumerate(outs, start=1)
        ]
        codes = [run.wait(timeout=600) for run in runs]
        requests = [r for r in server.requests() if r["vendor"] == "yunxin" and r["items"]]
    finally:
        server.stop()
    times = sorted(r["time"] for r in requests)
    span = times[-1] - times[0] if len(times) > 1 else time.monotonic() - start
    ok = sum(
        orjson.loads(line)["status"] == "ok"
        for out in outs
        for line in out.read_bytes().splitlines()
    )
    throttles = sum(1 for r in requests if r["code"] == 416)
    achieved = (len(requests) - 1) / span / rate if span else 0.0
    return (
        f"  {processes:>9}  {achieved:>14.3f}  {throttles:>9}  {busiest_second(times):>14}"
        f"  {ok:>6} of {items} ok, exit {max(codes)}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shared_run")
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--items", type=int, default=1500)
    args = parser.parse_args(argv)
    if redis_server_binary() is None:
        print("redis-server is not installed (apt-get install -y redis-server)", file=sys.stderr)
        return 1
    print(
        f"batchrecall run processes sharing rate = {args.rate} through Redis, against the "
        f"emulator limiting Yunxin to {args.rate}/s; {args.items} items, one run each"
    )
    print(f"  {'processes':>9}  {'achieved/limit':>14}  {'throttles':>9}  {'max 1-s window':>14}")
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder) / "redis") as redis:
        for processes in (1, 2, 4):
            print(_measure(Path(folder) / f"p{processes}", redis, processes, args.rate, args.items))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
