"""`make bench`: the figures of docs/benchmarks.md, each target printed with its figure.

Figures are medians of REPEATS runs, ratios come from one run, and every vendor is an emulator
served over real HTTP on 127.0.0.1 in a process of its own (nothing leaves the machine).
`BENCH_ONLY=raw,rates` runs only the named sections (see SECTIONS).
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from batchrecall.logs import configure_logging
from benchmarks import (
    batching,
    collect_history,
    collect_scan,
    flow,
    http_clients,
    limiters,
    memory,
    operators,
    parsing,
)
from benchmarks.jobs import ITEMS_A_CALL, JOBS, easemob_job, yunxin_job
from benchmarks.product import RunFigures, run_against, run_over_http
from benchmarks.vendor_server import vendor_server

REPEATS = 3
# How long a stopped run may take to exit before the bench kills it and reports what it had.
STOP_DEADLINE_S = 20.0
_T = TypeVar("_T")


def median_of(runs: Sequence[_T], key: Callable[[_T], float]) -> float:
    return statistics.median(key(run) for run in runs)


def verdict(ok: bool) -> str:
    return "MEETS" if ok else "MISSES"


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


def line(text: str) -> None:
    print(f"   {text}", flush=True)


def million_rows(tmp: Path) -> Path:
    """One Easemob job of 1,000,000 rows, written once and shared by the sections."""
    job = tmp / "million.jsonl"
    return job if job.exists() else easemob_job(job, 1_000_000)


# -- 1. raw speed ---------------------------------------------------------------------------

LATENCY_MS = 50.0


def bench_raw(tmp: Path) -> None:
    heading("1. Raw speed: no rate limit, a loopback server answering after 50 ms, another process")
    with http_clients.loopback_server(LATENCY_MS) as base:
        line(f"{'client':<42} {'in flight':>9} {'req/s':>8} {'CPU/req':>9}")
        ours: dict[int, float] = {}
        for concurrency in (64, 256):
            for name in http_clients.HTTPX_CLIENTS:
                slow = name.startswith("httpx 0.28")
                calls = (1 if slow else 10) * concurrency
                runs = [
                    asyncio.run(http_clients.measure_httpx(name, base, concurrency, calls))
                    for _ in range(REPEATS)
                ]
                per_s, cpu = median_of(runs, lambda s: s.per_s), median_of(runs, lambda s: s.cpu_ms)
                if name.endswith("transport"):
                    ours[concurrency] = per_s
                line(f"{name:<42} {concurrency:>9} {per_s:>8,.0f} {cpu:>6.2f} ms")
            runs = [
                asyncio.run(http_clients.measure_aiohttp(base, concurrency, 10 * concurrency))
                for _ in range(REPEATS)
            ]
            per_s, cpu = median_of(runs, lambda s: s.per_s), median_of(runs, lambda s: s.cpu_ms)
            line(f"{'aiohttp alone (no httpx)':<42} {concurrency:>9} {per_s:>8,.0f} {cpu:>6.2f} ms")
        for concurrency, per_s in ours.items():
            bound = concurrency / (LATENCY_MS / 1000)
            line(
                f"target: batchrecall transport at {concurrency} in flight >= 0.9 x {bound:,.0f}/s:"
                f" {per_s:,.0f}/s = {per_s / bound:.2f} x  {verdict(per_s >= 0.9 * bound)}"
            )
        cpu_by_calls = {}
        for calls in (1_000, 10_000, 100_000):
            repeats = REPEATS if calls < 100_000 else 1
            runs = [
                asyncio.run(
                    http_clients.measure_httpx(
                        "httpx + batchrecall.run.transport", base, 256, calls
                    )
                )
                for _ in range(repeats)
            ]
            cpu_by_calls[calls] = median_of(runs, lambda s: s.cpu_ms)
        growth = cpu_by_calls[100_000] / cpu_by_calls[1_000]
        figures = ", ".join(f"{c:,} calls {ms:.2f} ms" for c, ms in cpu_by_calls.items())
        worst = max(cpu_by_calls.values())
        line(f"target: CPU per call <= 0.5 ms, flat (256 in flight; 100,000: one run): {figures}")
        line(
            f"        100,000 / 1,000 calls: {growth:.2f} (flat: <= 1.25)"
            f"  {verdict(worst <= 0.5 and growth <= 1.25)}"
        )
        bench_product_speed(tmp, base)


def bench_product_speed(tmp: Path, base: str) -> None:
    line("the product: run_request, Yunxin single recalls, no rate limit, the same server")
    n = 4_000
    for concurrency in (64, 256):
        runs = [
            run_against(base, yunxin_job(tmp / f"speed-{concurrency}-{i}.jsonl", n), concurrency)
            for i in range(REPEATS)
        ]
        per_s = median_of(runs, lambda r: r.items_per_s)
        cpu = median_of(runs, lambda r: r.cpu_ms_per_call)
        bound = concurrency / (LATENCY_MS / 1000)
        ok = per_s >= 0.9 * bound and cpu <= 0.5
        line(
            f"concurrency {concurrency:>3}: {per_s:,.0f} items/s = {per_s / bound:.2f} x"
            f" {bound:,.0f}/s, CPU {cpu:.2f} ms a call  {verdict(ok)}"
        )


# -- 2. rate adherence ----------------------------------------------------------------------


def _adherence(runs: Sequence[RunFigures], limit: float) -> str:
    achieved = median_of(runs, lambda r: r.achieved)
    worst_window = max(r.max_in_window for r in runs)
    throttles = sum(r.throttle_answers for r in runs)
    ok = achieved / limit >= 0.97 and throttles == 0 and worst_window <= limit
    return (
        f"{achieved:6.1f}/s = {achieved / limit:.3f} of the limit, busiest 1 s window"
        f" {worst_window}, throttle answers {throttles}  {verdict(ok)}"
    )


def bench_rates(tmp: Path) -> None:
    heading("2. Rate adherence: the emulator enforces the lane's rate over a sliding 1 s window")
    seconds = 3
    for rate in (50, 200):
        jobs = {
            vendor: [
                make(tmp / f"rate-{vendor}-{rate}-{i}.jsonl", rate * seconds * ITEMS_A_CALL[vendor])
                for i in range(REPEATS)
            ]
            for vendor, make in JOBS.items()
        }
        rates = dict.fromkeys(JOBS, float(rate))
        seed = [job for group in jobs.values() for job in group]
        with vendor_server(tmp, rates=rates, seed=seed) as served:
            for vendor, group in jobs.items():
                runs = [run_over_http(served, job, vendor=vendor, rate=rate) for job in group]
                calls = f"{ITEMS_A_CALL[vendor]} a call"
                line(f"{vendor:<8} ({calls:>10}) rate {rate:>3}: {_adherence(runs, rate)}")


# -- 3. latency hiding ----------------------------------------------------------------------


def bench_latency(tmp: Path) -> None:
    heading("3. Latency hiding: Yunxin, vendor latency 100 +/- 10 ms, rate 200, default settings")
    rate = 200
    group = [yunxin_job(tmp / f"latency-{i}.jsonl", rate * 5) for i in range(REPEATS)]
    with vendor_server(
        tmp, rates={"yunxin": rate}, latency_ms=100, jitter_ms=10, seed=group
    ) as served:
        runs = [run_over_http(served, job, vendor="yunxin", rate=rate) for job in group]
    achieved = median_of(runs, lambda r: r.achieved)
    throttles = sum(r.throttle_answers for r in runs)
    line(
        f"target: achieved >= 0.95 x {rate}/s: {achieved:.1f}/s = {achieved / rate:.3f},"
        f" throttle answers {throttles}  {verdict(achieved >= 0.95 * rate)}"
    )


# -- 4. throttle recovery -------------------------------------------------------------------


def bench_throttle(tmp: Path) -> None:
    heading(
        "4. Throttle recovery: Easemob, vendor limit 20/s, lane rate 50/s, 150 ms, 30 s of work"
    )
    limit, calls = 20, 20 * 30
    group = [easemob_job(tmp / f"throttle-{i}.jsonl", calls * 30) for i in range(REPEATS)]
    runs = []
    for job in group:  # a fresh emulator each run: no window carried over
        with vendor_server(tmp, rates={"easemob": limit}, latency_ms=150, seed=[job]) as served:
            runs.append(run_over_http(served, job, vendor="easemob", rate=50))
    per_s = median_of(runs, lambda r: calls / r.seconds)
    share = median_of(runs, lambda r: r.throttle_answers / r.requests)
    answers = ", ".join(f"{r.throttle_answers}/{r.requests}" for r in runs)
    ok = per_s >= 0.85 * limit and share <= 0.05
    line(
        f"target: >= 0.85 x {limit}/s calls done, <= 5% throttle answers: {per_s:.1f}/s ="
        f" {per_s / limit:.2f} x, throttle answers {share:.1%} ({answers})  {verdict(ok)}"
    )


# -- 5. against an operator's loop ----------------------------------------------------------


def bench_operators(tmp: Path) -> None:
    heading("5. Against an operator's loop: Yunxin, vendor limit 100/s, 50 ms latency, one run")
    n, limit = 300, 100
    jobs = {name: yunxin_job(tmp / f"op-{name}.jsonl", n) for name in ("seq", "curl", "ours")}
    figures: dict[str, tuple[float, int]] = {}
    with vendor_server(
        tmp, rates={"yunxin": limit}, latency_ms=LATENCY_MS, seed=list(jobs.values())
    ) as served:
        ours = run_over_http(served, jobs["ours"], vendor="yunxin", rate=limit)
        figures["batchrecall (rate 100)"] = (ours.items_per_s, ours.throttle_answers)
        seq = operators.sequential_httpx(served, jobs["seq"])
        figures["sequential httpx loop"] = (seq.done_per_s, seq.throttle_answers)
        if operators.curl_available():
            curl = operators.xargs_curl(served, jobs["curl"], tmp)
            figures["xargs -P 16 curl"] = (curl.done_per_s, curl.throttle_answers)
        else:
            line("xargs -P 16 curl: skipped, curl is not installed (apt-get install curl)")
    mine = figures["batchrecall (rate 100)"][0]
    for name, (per_s, throttles) in figures.items():
        line(
            f"{name:<24} {per_s:7.1f} items done/s (batchrecall {mine / per_s:5.2f} x),"
            f" throttle answers {throttles}"
        )


# -- 6. memory ------------------------------------------------------------------------------


def bench_memory(tmp: Path) -> None:
    heading("6. Memory: peak RSS of whole commands (/usr/bin/time)")
    for n in (100_000, 1_000_000):
        job = easemob_job(tmp / f"mem-{n}.jsonl", n) if n < 1_000_000 else million_rows(tmp)
        repeats = REPEATS if n <= 100_000 else 1
        for command in ("validate", "plan"):
            runs = [memory.measure_cli([command, str(job)], tmp) for _ in range(repeats)]
            seconds = median_of(runs, lambda m: m.seconds)
            rss = median_of(runs, lambda m: m.peak_rss_kib)
            runs_note = f"median of {repeats}" if repeats > 1 else "one run"
            line(
                f"{command:<8} {n:>9,} rows: {rss / 1024:6.0f} MiB peak, {n / seconds:8,.0f}"
                f" rows/s ({runs_note})"
            )
    peaks = {}
    for n in (20_000, 200_000):
        job = easemob_job(tmp / f"run-{n}.jsonl", n)
        with vendor_server(tmp) as served:
            args = ["run", str(job), "--config", str(served.config_path), "--yes"]
            args += ["--no-progress", "--rate", "easemob=2000", "--out", str(tmp / "r.jsonl")]
            args += ["--overwrite"]
            measured = memory.measure_cli(args, tmp)
        peaks[n] = measured.peak_rss_kib
        line(
            f"run      {n:>9,} items against the emulator: {measured.peak_rss_kib / 1024:6.0f} MiB"
            f" peak, {n / measured.seconds:,.0f} items/s (exit {measured.exit_code})"
        )
    ratio = peaks[200_000] / peaks[20_000]
    line(
        f"target: run peak RSS flat: 200,000 / 20,000 items = {ratio:.2f}  {verdict(ratio <= 1.2)}"
    )


# -- the engine's whole-job figures ---------------------------------------------------------


SORTED_ROWS = 2_500
SORTED_LATENCY_MS = 20.0


def bench_engine(tmp: Path) -> None:
    heading(
        "Engine: a job sorted by lane, parses per command, Ctrl-C on 200,000 and 1,000,000 rows,"
        " RSS of a 10-lane run (one run each)"
    )
    _bench_sorted_lanes(tmp)
    job = easemob_job(tmp / "parses.jsonl", 3_000, apps=3)
    parses = flow.parses_per_command(job, tmp / "parses.results.jsonl")
    counted = ", ".join(f"{name} {n}" for name, n in parses.items())
    line(f"parses of the job file per command (counted): {counted}")
    line(f"target: each command parses its job once  {verdict(set(parses.values()) == {1})}")
    for rows in (200_000, 1_000_000):
        big = million_rows(tmp) if rows == 1_000_000 else easemob_job(tmp / "200k.jsonl", rows)
        stopped = memory.interrupt_run(
            ["run", str(big), "--emulate", "--yes", "--no-progress", "--overwrite"],
            tmp / f"ctrl-c-{rows}.results.jsonl",
            tmp,
            after=lambda written, _: written >= 2_000,
            give_up_after=STOP_DEADLINE_S,
        )
        line(
            f"{rows:,} rows, --emulate, first Ctrl-C after {stopped.rows_at_signal:,} rows:"
            f" {stopped.exit_text()}, {stopped.rows_after:,} rows written after it,"
            f" peak RSS {stopped.peak_rss_kib / 1024:.0f} MiB (the emulators' messages included)"
        )
        ok = not stopped.gave_up and stopped.exit_seconds <= 2.0 + 0.1
        line(f"target: out within the longest call in flight + 2 s  {verdict(ok)}")
    lanes = easemob_job(tmp / "ten-lanes.jsonl", 1_000_000, apps=10)
    with vendor_server(tmp) as served:
        config = _ten_lane_config(served.config_path)
        stopped = memory.interrupt_run(
            ["run", str(lanes), "--config", str(config), "--yes", "--no-progress", "--overwrite"],
            tmp / "ten-lanes.results.jsonl",
            tmp,
            after=lambda rows, _: rows >= 10_000,
            give_up_after=STOP_DEADLINE_S,
        )
    line(
        f"1,000,000 rows over 10 lanes (emulator in its own process), Ctrl-C after"
        f" {stopped.rows_at_signal:,} rows: peak RSS {stopped.peak_rss_kib / 1024:.0f} MiB,"
        f" {stopped.exit_text()}, {stopped.rows_after:,} rows written after it"
    )


def _bench_sorted_lanes(tmp: Path) -> None:
    """3 Yunxin apps x 2,500 rows, all of a's rows first, then b's, then c's; each lane at
    100 calls/s, the vendor answering after 20 ms (its own process, no rate limit of its own).
    Against one lane alone (medians of REPEATS, interleaved), and against the same 7,500 calls
    in one lane at 300/s: what this machine sends at all while the run and the emulator share
    its 2 cores."""
    one = tmp / "one-lane.jsonl"
    jobs = flow.sorted_job(tmp, SORTED_ROWS)
    files = flow.sorted_job(tmp, SORTED_ROWS, files=True)
    merged = flow.sorted_job(tmp, SORTED_ROWS, one_app="a")
    one.write_bytes(files[0].read_bytes())
    with vendor_server(tmp, latency_ms=SORTED_LATENCY_MS, seed=[*jobs]) as served:
        config = flow.lanes_config(served, tmp)
        fast = flow.lanes_config(served, tmp, rate=3 * flow.LANE_RATE)
        capacity = flow.run_lanes(served, fast, merged, tmp / "merged.results.jsonl")
        # Interleaved, so that each kind of run meets the machine's load alike.
        kinds = {"alone": [one], "one file": jobs, "three files": files}
        runs: dict[str, list[flow.LaneRun]] = {kind: [] for kind in kinds}
        for _ in range(REPEATS):
            for kind, paths in kinds.items():
                out = tmp / f"{kind.replace(' ', '-')}.results.jsonl"
                runs[kind].append(flow.run_lanes(served, config, paths, out))
    alone = median_of(runs["alone"], lambda r: r.seconds)
    line(
        f"one lane alone, {SORTED_ROWS:,} rows at {flow.LANE_RATE:g}/s,"
        f" {SORTED_LATENCY_MS:g} ms vendor: {alone:.1f} s"
        f" (run's CPU {median_of(runs['alone'], lambda r: r.cpu_s):.1f} s)"
    )
    line(
        f"the same {3 * SORTED_ROWS:,} calls in one lane at {3 * flow.LANE_RATE:g}/s (one run):"
        f" {capacity.seconds:.1f} s (run's CPU {capacity.cpu_s:.1f} s)"
    )
    for kind in ("one file", "three files"):
        seconds = median_of(runs[kind], lambda r: r.seconds)
        latest = max(max(run.starts.values(), default=99.0) for run in runs[kind])
        codes = sorted({run.exit_code for run in runs[kind]})
        line(
            f"3 lanes sorted by lane, {kind}: {seconds:.1f} s = {seconds / alone:.2f} x the lane"
            f" alone, {seconds / capacity.seconds:.2f} x the same calls in one lane (exit"
            f" {codes}, run's CPU {median_of(runs[kind], lambda r: r.cpu_s):.1f} s); the last"
            f" lane's first request at most +{latest:.2f} s after the first lane's"
        )
        ok = latest <= 1.0 and seconds <= 1.1 * alone + 2.0
        line(f"target: every lane within 1 s, <= 1.1 x the slowest lane + 2 s  {verdict(ok)}")


def _ten_lane_config(path: Path) -> Path:
    """The emulators' config with apps app0 ... app9 at Easemob, each its own lane at 500/s."""
    text = path.read_text(encoding="utf-8")
    section = text[text.index("[easemob.default]") : text.index("[goeasy.default]")]
    section = "\n".join(row for row in section.splitlines() if not row.strip().startswith("rate"))
    lanes = [
        section.replace("[easemob.default]", f"[easemob.app{n}]").rstrip() + "\nrate = 500\n"
        for n in range(10)
    ]
    config = path.with_name("ten-lanes.toml")
    config.write_text(text + "\n" + "\n".join(lanes), encoding="utf-8")
    return config


# -- batching -------------------------------------------------------------------------------


def bench_batching(tmp: Path) -> None:
    n = 3_000
    heading(f"Batching: {n:,} Easemob recalls, lane rate 1,000/s, in-process emulator (ASGI)")
    job = easemob_job(tmp / "batching.jsonl", n)
    runs = {
        batch: [batching.run_in_process(job, batch=batch, rate=1_000) for _ in range(REPEATS)]
        for batch in (True, False)
    }
    batched, single = (statistics.median(runs[flag]) for flag in (True, False))
    line(f"batch_recall (30 a call): {batched:.2f} s = {n / batched:,.0f} items/s")
    line(f"msg_recall (1 a call):    {single:.2f} s = {n / single:,.0f} items/s")
    line(f"batching speed-up: {single / batched:.1f} x")


# -- aiolimiter -----------------------------------------------------------------------------


def bench_limiters(tmp: Path) -> None:
    heading("aiolimiter against the lane's SlidingWindowLimiter (real clock)")
    runs = [limiters.measure() for _ in range(REPEATS)]
    line(
        "AsyncLimiter(50, 1): requests in the first second"
        f" {median_of(runs, lambda r: r.burst_first_second):.0f} (limit 50)"
    )
    line(
        "AsyncLimiter(1, 1/50): requests in the first second"
        f" {median_of(runs, lambda r: r.one_slot_first_second):.0f}"
    )
    line(
        "AsyncLimiter(1, 1/10), max_rate then raised for 40/s:"
        f" {median_of(runs, lambda r: r.after_rate_change):.0f}/s (the rate is read once)"
    )
    line(
        "AsyncLimiter(1, 1/2.5): busiest 1 s window"
        f" {median_of(runs, lambda r: r.fractional_max_window):.0f} (limit 2.5)"
    )
    line(
        "SlidingWindowLimiter(50): first second"
        f" {median_of(runs, lambda r: r.ours_first_second):.0f}; SlidingWindowLimiter(2.5):"
        f" busiest 1 s window {median_of(runs, lambda r: r.ours_fractional_max_window):.0f}"
    )


def bench_collect(tmp: Path) -> None:
    heading("collect --export: an Easemob export of 1,000,000 records")
    for text in collect_scan.bench(tmp, REPEATS):
        line(text)


def bench_collect_history(tmp: Path) -> None:
    rate, limit = collect_history.HISTORY_RATE, collect_history.EMULATOR_LIMIT
    heading(f"collect over HTTP: history calls at history_rate = {rate} (emulator limit {limit})")
    rates = {"yunxin": float(limit), "goeasy": float(limit)}
    with vendor_server(tmp, rates=rates, history=True) as served:
        config = collect_history.with_history_rate(served.config_path, tmp / "history.toml")
        for vendor in ("yunxin", "goeasy"):
            runs = [
                collect_history.run_collect(served, config, vendor, tmp) for _ in range(REPEATS)
            ]
            line(collect_history.describe(vendor, runs))


SECTIONS: dict[str, Callable[[Path], None]] = {
    "raw": bench_raw,
    "rates": bench_rates,
    "latency": bench_latency,
    "throttle": bench_throttle,
    "operators": bench_operators,
    "memory": bench_memory,
    "engine": bench_engine,
    "batching": bench_batching,
    "limiters": bench_limiters,
    "parse": parsing.bench_parsing,
    "collect": bench_collect,
    "history": bench_collect_history,
}


def main() -> None:
    configure_logging(fmt="console", level=logging.ERROR)
    only = [name for name in os.environ.get("BENCH_ONLY", "").split(",") if name]
    if unknown := set(only) - set(SECTIONS):
        sys.exit(f"BENCH_ONLY: unknown sections {sorted(unknown)}; use {sorted(SECTIONS)}")
    print(
        f"make bench: {os.cpu_count()} cores, Python {platform.python_version()},"
        f" {platform.system()} {platform.machine()}; medians of {REPEATS} runs",
        flush=True,
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for name, section in SECTIONS.items():
            if not only or name in only:
                section(Path(folder))
    print(f"\n(bench took {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
