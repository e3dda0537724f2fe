"""Job files for the benchmarks: one vendor, one lane (or several apps), any number of items."""

from __future__ import annotations

from pathlib import Path

import orjson

# Ids that never collide between the jobs of one benchmark run.
_next_id = [1_500_000_000_000_000_000]


def _ids(n: int) -> range:
    start = _next_id[0]
    _next_id[0] += n
    return range(start, start + n)


def easemob_job(path: Path, n: int, *, apps: int = 1) -> Path:
    """Recalls, 30 to a `batch_recall` call; `apps` > 1 spreads them over apps app0, app1, ..."""
    with path.open("wb") as out:
        for i in _ids(n):
            row = {
                "vendor": "easemob",
                "op": "recall",
                "msg_id": str(i),
                "to": f"user-{i % 97}",
                "chat_type": "chat",
            }
            if apps > 1:
                row["app"] = f"app{i % apps}"
            out.write(orjson.dumps(row) + b"\n")
    return path


def goeasy_job(path: Path, n: int) -> Path:
    """Recalls of `n` timestamps, 20 to a row (one conversation, one call each)."""
    ids = list(_ids(n))
    with path.open("wb") as out:
        for start in range(0, n, 20):
            stamps = [1_700_000_000_000 + (i % 10**12) for i in ids[start : start + 20]]
            row = {
                "vendor": "goeasy",
                "op": "recall",
                "userAId": f"a-{start}",
                "userBId": "b",
                "messages": stamps,
            }
            out.write(orjson.dumps(row) + b"\n")
    return path


def yunxin_job(path: Path, n: int) -> Path:
    """Single recalls, one message a call."""
    with path.open("wb") as out:
        for i in _ids(n):
            row = {
                "vendor": "yunxin",
                "op": "recall",
                "conversation_id": "a|1|b",
                "message_server_id": str(i % 10**15),
            }
            out.write(orjson.dumps(row) + b"\n")
    return path


JOBS = {"easemob": easemob_job, "goeasy": goeasy_job, "yunxin": yunxin_job}
ITEMS_A_CALL = {"easemob": 30, "goeasy": 20, "yunxin": 1}
