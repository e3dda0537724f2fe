"""Job-row parsing: `validate` and `plan` on mixed Easemob / Yunxin JSONL, against orjson alone.

`.venv/bin/python -m benchmarks.parsing` (or `BENCH_ONLY=parse make bench`) writes a job of
100,000 and one of 1,000,000 rows, half Easemob recalls and half Yunxin recalls, and times in
the same run: `orjson.loads` over the file's lines (read line by line, as the reader does), then
`batchrecall validate` and `batchrecall plan` each in a process of their own under /usr/bin/time
(peak RSS). Figures are medians of REPEATS runs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchmarks.memory import measure_cli

REPEATS = 3
SIZES = (100_000, 1_000_000)
# Targets on the 1,000,000-row job: rows a second, and the share of orjson's own pace.
VALIDATE_TARGET_ROWS_S = 200_000
ORJSON_SHARE_TARGET = 0.25


def mixed_job(path: Path, n: int) -> Path:
    """`n` rows, Easemob and Yunxin recalls in turn, every id its own (no duplicates)."""
    with path.open("wb") as out:
        for i in range(n):
            if i % 2:
                row = {
                    "vendor": "easemob",
                    "op": "recall",
                    "msg_id": str(1_500_000_000_000_000_000 + i),
                    "to": f"user-{i % 97}",
                    "chat_type": "chat",
                }
            else:
                row = {
                    "vendor": "yunxin",
                    "op": "recall",
                    "conversation_id": f"a{i % 89}|1|b{i % 13}",
                    "message_server_id": str(100_000_000_000_000 + i),
                }
            out.write(orjson.dumps(row) + b"\n")
    return path


def orjson_rows_per_s(path: Path) -> float:
    """orjson.loads over every line of the file, read line by line: the pace to compare with."""
    start = time.perf_counter()
    rows = 0
    with path.open("rb") as lines:
        for line in lines:
            orjson.loads(line)
            rows += 1
    return rows / (time.perf_counter() - start)


@dataclass(frozen=True)
class Figures:
    rows: int
    orjson_rows_s: float
    validate_rows_s: float
    validate_rss_kib: float
    plan_rows_s: float
    plan_rss_kib: float

    @property
    def share(self) -> float:
        return self.validate_rows_s / self.orjson_rows_s


def measure(path: Path, rows: int, tmp: Path) -> Figures:
    """One run of each: orjson, validate, plan, one after the other (the machine's load alike)."""
    orjson_rate = orjson_rows_per_s(path)
    validate = measure_cli(["validate", str(path)], tmp)
    plan = measure_cli(["plan", str(path)], tmp)
    for name, done in (("validate", validate), ("plan", plan)):
        if done.exit_code != 0:
            raise SystemExit(f"{name} {path} exited {done.exit_code}")
    return Figures(
        rows=rows,
        orjson_rows_s=orjson_rate,
        validate_rows_s=rows / validate.seconds,
        validate_rss_kib=validate.peak_rss_kib,
        plan_rows_s=rows / plan.seconds,
        plan_rss_kib=plan.peak_rss_kib,
    )


def bench_parsing(tmp: Path) -> None:
    print(
        "\n== Parsing: validate and plan on mixed Easemob / Yunxin JSONL, orjson alone", flush=True
    )
    medians: dict[int, Figures] = {}
    shares_of: dict[int, float] = {}
    for rows in SIZES:
        path = mixed_job(tmp / f"parse-{rows}.jsonl", rows)
        runs = [measure(path, rows, tmp) for _ in range(REPEATS)]
        median = Figures(
            rows=rows,
            **{
                name: statistics.median(getattr(run, name) for run in runs)
                for name in (
                    "orjson_rows_s",
                    "validate_rows_s",
                    "validate_rss_kib",
                    "plan_rows_s",
                    "plan_rss_kib",
                )
            },
        )
        medians[rows] = median
        # Each run's share is of the two measured back to back; their median is the figure.
        share = statistics.median(run.share for run in runs)
        shares_of[rows] = share
        shares = ", ".join(f"{run.share:.3f}" for run in runs)
        print(
            f"   {rows:>9,} rows: orjson.loads {median.orjson_rows_s:>9,.0f} rows/s;"
            f" validate {median.validate_rows_s:>8,.0f} rows/s = {share:.3f} x orjson"
            f" (runs {shares}), peak {median.validate_rss_kib / 1024:.0f} MiB;"
            f" plan {median.plan_rows_s:>8,.0f} rows/s, peak {median.plan_rss_kib / 1024:.0f} MiB",
            flush=True,
        )
        path.unlink()
    big = medians[SIZES[-1]]
    small = medians[SIZES[0]]
    big_share = shares_of[big.rows]
    ok = big.validate_rows_s >= VALIDATE_TARGET_ROWS_S and big_share >= ORJSON_SHARE_TARGET
    print(
        f"   target: validate >= {VALIDATE_TARGET_ROWS_S:,} rows/s and >="
        f" {ORJSON_SHARE_TARGET} x orjson on {big.rows:,} rows: {big.validate_rows_s:,.0f} rows/s,"
        f" {big_share:.3f} x (median of the runs' shares)  {'MEETS' if ok else 'MISSES'}"
    )
    print(
        f"   RSS flat: validate peak {big.rows:,} / {small.rows:,} rows ="
        f" {big.validate_rss_kib / small.validate_rss_kib:.2f},"
        f" plan {big.plan_rss_kib / small.plan_rss_kib:.2f}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        bench_parsing(Path(folder))


if __name__ == "__main__":
    main()
