"""A process that takes permits from one Redis window as fast as it is allowed to.

    python -m tests.limits_hammer URL KEY LIMIT PERIOD_S COUNT [UNAVAILABLE_TIMEOUT_S]

It says `ready` through the list `hammer:ready`, waits for a token on `hammer:go` (so that all
processes start together), then prints the server's time of each permit it gets, one a line,
until it has COUNT of them. Exit 0 when done, 3 when the limiter stayed unreachable.
"""

from __future__ import annotations

import sys

import anyio
import redis

from batchrecall.errors import LimiterUnavailableError
from batchrecall.logs import configure_logging
from batchrecall.run.limits import RedisPermitStore


async def hammer(
    url: str, key: str, limit: int, period_s: float, count: int, unavailable_s: float
) -> int:
    store = RedisPermitStore(url, unavailable_timeout_s=unavailable_s)
    got = 0
    try:
        while got < count:
            wait = await store.acquire(key, limit, period_s)
            if wait > 0:
                await anyio.sleep(wait)
                continue
            got += 1
            print(repr(store.stats.granted_at), flush=True)
    except LimiterUnavailableError:
        print("unavailable", flush=True)
        return 3
    finally:
        await store.aclose()
    return 0


def main(argv: list[str]) -> int:
    configure_logging(stream=sys.stderr)  # stdout carries the permits only
    url, key, limit, period_s, count = argv[:5]
    timeout = float(argv[5]) if len(argv) > 5 else 30.0
    with redis.Redis.from_url(url) as client:
        client.rpush("hammer:ready", "1")
        if client.blpop(["hammer:go"], timeout=60) is None:
            return 2
    return anyio.run(hammer, url, key, int(limit), float(period_s), int(count), timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
