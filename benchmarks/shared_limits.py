"""Several processes sharing one rate through Redis: what they achieve together, and the cost.

    .venv/bin/python -m benchmarks.shared_limits [--rate 100] [--seconds 5] [--repeats 3]

Starts a throwaway `redis-server` on a free loopback port, then for 1, 2 and 4 processes has
each take permits from one window of `rate` a second as fast as it is allowed (the worst case
for contention), and prints medians over the repeats: the permits granted together against the
limit, the most permits in any sliding 1-second window (by the server's clock), and the cost of a
permit in Redis round trips and milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path

import anyio
import orjson
import redis

from batchrecall.run.limits import RedisPermitStore
from tests.redis_server import RedisServer, redis_server_binary

PROCESSES = (1, 2, 4)
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    achieved: float
    max_window: int
    round_trips_per_permit: float
    ms_per_permit: float
    ms_per_round_trip: float


async def _take_permits(url: str, key: str, rate: int, seconds: float) -> dict[str, object]:
    store = RedisPermitStore(url)
    granted: list[float] = []
    end = time.monotonic() + seconds
    try:
        while (left := end - time.monotonic()) > 0:
            wait = await store.acquire(key, rate, 1.0)
            if wait > 0:
                await anyio.sleep(min(wait, left))
            else:
                granted.append(store.stats.granted_at)
    finally:
        await store.aclose()
    stats = store.stats
    return {"granted": granted, "round_trips": stats.round_trips, "redis_s": stats.redis_s}


def _worker(argv: list[str]) -> int:
    url, key, rate, seconds = argv
    with redis.Redis.from_url(url) as client:
        client.rpush(f"{key}:ready", "1")
        client.blpop([f"{key}:go"], timeout=60)
    result = anyio.run(_take_permits, url, key, int(rate), float(seconds))
    sys.stdout.buffer.write(orjson.dumps(result))
    return 0


def _max_in_window(times: list[float], width: float) -> int:
    ordered = sorted(times)
    return max((bisect_right(ordered, t + width) - i for i, t in enumerate(ordered)), default=0)


def _measure(url: str, key: str, processes: int, rate: int, seconds: float) -> Outcome:
    command = [sys.executable, "-m", "benchmarks.shared_limits", "--worker"]
    workers = [
        subprocess.Popen(
            [*command, url, key, str(rate), str(seconds)], cwd=ROOT, stdout=subprocess.PIPE
        )
        for _ in range(processes)
    ]
    with redis.Redis.from_url(url) as client:
        for _ in workers:
            client.blpop([f"{key}:ready"], timeout=60)
        client.rpush(f"{key}:go", *["1"] * processes)
    results = [orjson.loads(worker.communicate()[0]) for worker in workers]
    granted = sorted(t for result in results for t in result["granted"])
    round_trips = sum(result["round_trips"] for result in results)
    redis_s = sum(result["redis_s"] for result in results)
    # Whole seconds from the first permit, all processes asking all along.
    span = int(seconds) - 1
    in_span = bisect_left(granted, granted[0] + span)
    return Outcome(
        achieved=in_span / (span * rate),
        max_window=_max_in_window(granted, 1.0),
        round_trips_per_permit=round_trips / len(granted),
        ms_per_permit=1000 * redis_s / len(granted),
        ms_per_round_trip=1000 * redis_s / round_trips,
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return _worker(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shared_limits")
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if redis_server_binary() is None:
        print("redis-server is not installed (apt-get install -y redis-server)", file=sys.stderr)
        return 1
    print(
        f"Shared rate through Redis: {args.rate}/s for all processes together, each asking as "
        f"fast as it is allowed; medians of {args.repeats} runs of {args.seconds:g} s"
    )
    print(
        f"  {'processes':>9}  {'achieved/limit':>14}  {'max 1-s window':>14}  "
        f"{'round trips/permit':>18}  {'ms/permit':>9}  {'ms/round trip':>13}"
    )
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder)) as server:
        for processes in PROCESSES:
            runs = [
                _measure(server.url, f"bench-{processes}-{n}", processes, args.rate, args.seconds)
                for n in range(args.repeats)
            ]

            def median(field: str, runs: list[Outcome] = runs) -> float:
                return float(statistics.median(getattr(run, field) for run in runs))

            print(
                f"  {processes:>9}  {median('achieved'):>14.3f}  "
                f"{max(run.max_window for run in runs):>14}  "
                f"{median('round_trips_per_permit'):>18.2f}  {median('ms_per_permit'):>9.3f}  "
                f"{median('ms_per_round_trip'):>13.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
