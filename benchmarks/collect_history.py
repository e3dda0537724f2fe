"""`collect` against the emulators over HTTP, at the lane's configured `history_rate`: a Yunxin
message search by sender (10 senders, 2,000 messages each: 20 pages of 100 a sender) and a
GoEasy group's history paged back (6,000 messages, 30 a page), each some 200 calls at 20 a
second. The calls are counted by the product (the manifest's `calls`) and by the emulator's
request log; the rate is read from the log's times. The emulator's own limit is twice the
history rate, so that a request arriving a few ms early at its window is not refused: the
busiest second it saw shows whether the product kept the rate."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from batchrecall.emulators.server import EmulatorSet
from benchmarks.product import max_in_window
from benchmarks.vendor_server import Served

HISTORY_RATE = 20  # calls a second: window (20, 1 s)
EMULATOR_LIMIT = 2 * HISTORY_RATE
SENDER = "spammer-7"
YUNXIN_SENDERS = tuple(f"spammer-{n}" for n in range(10))
YUNXIN_MESSAGES = 2_000  # a sender: 20 pages of 100
GOEASY_MESSAGES = 6_000  # 200 pages of 30
_COUNTED: dict[str, Callable[[str], bool]] = {
    "yunxin": lambda path: path.endswith("/search_messages"),
    "goeasy": lambda path: path == "/v2/im/history",
}


def seed_history(emulators: EmulatorSet, now_s: float) -> None:
    """Messages of the last hour: the Yunxin senders' in one-to-one conversations; SENDER's and
    others' in a GoEasy group."""
    for s, sender in enumerate(YUNXIN_SENDERS):
        for n in range(YUNXIN_MESSAGES):
            emulators.yunxin.state.add_message(
                f"{sender}|1|victim-{n % 20}", 100_000 * (s + 1) + n, sent_at=now_s - 60 - n * 0.1
            )
    now_ms = int(now_s * 1000)
    for n in range(GOEASY_MESSAGES):
        emulators.goeasy.state.add_message(
            now_ms - 60_000 - n * 100, group_id="g1", sender=SENDER if n % 2 else f"member-{n}"
        )


@dataclass(frozen=True)
class HistoryRun:
    calls: int
    """The product's count (manifest `calls.history`)."""
    logged: int
    """The emulator's count of the same requests."""
    span_s: float
    """First history request to the last, at the emulator."""
    wall_s: float
    """The whole `batchrecall collect` process."""
    busiest_second: int
    throttle_answers: int
    items: int

    @property
    def shortest_s(self) -> float:
        """The shortest first-to-last span the window (HISTORY_RATE in any 1 s) allows for
        these calls: the first HISTORY_RATE at once, each next HISTORY_RATE a second later."""
        return float(math.floor((self.logged - 1) / HISTORY_RATE))

    @property
    def of_rate(self) -> float:
        """The rate kept, as a share of the configured one: the shortest span over the span."""
        return self.shortest_s / self.span_s if self.span_s > 0 else 0.0


def with_history_rate(config: Path, out: Path) -> Path:
    """The emulators' config with `history_rate` on the Yunxin and GoEasy lanes."""
    lines = []
    for text in config.read_text(encoding="utf-8").splitlines():
        lines.append(text)
        if text in ("[yunxin.default]", "[goeasy.default]"):
            lines.append(f"history_rate = {HISTORY_RATE}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def run_collect(served: Served, config: Path, vendor: str, tmp: Path) -> HistoryRun:
    out = tmp / f"history-{vendor}.jsonl"
    out.unlink(missing_ok=True)
    if vendor == "goeasy":
        query = ["--sender", SENDER, "--conversation", "group:g1"]
    else:
        query = ["--sender", *YUNXIN_SENDERS]
    command = [sys.executable, "-m", "batchrecall", "collect", vendor, *query, "--since", "2h",
               "--config", str(config), "--out", str(out)]  # fmt: skip
    already = len(served.requests())
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"collect {vendor}: exit {done.returncode}: {done.stderr[-500:]}")
    manifest: dict[str, Any] = orjson.loads(Path(f"{out}.manifest.json").read_bytes())
    counted = _COUNTED[vendor]
    log = [e for e in served.requests()[already:] if e["vendor"] == vendor and counted(e["path"])]
    times = sorted(e["time"] for e in log)
    return HistoryRun(
        calls=manifest["calls"]["history"],
        logged=len(log),
        span_s=times[-1] - times[0] if len(times) > 1 else 0.0,
        wall_s=wall,
        busiest_second=max_in_window(times),
        throttle_answers=sum(1 for e in log if e["status"] == 429 or e["code"] == 416),
        items=manifest["found"]["items"],
    )


def describe(vendor: str, runs: list[HistoryRun]) -> str:
    ratio = statistics.median(r.of_rate for r in runs)
    first = runs[0]
    return (
        f"{vendor:<7} {first.calls} calls (emulator saw {first.logged}), "
        f"{statistics.median(r.span_s for r in runs):.2f} s first to last call (the window's "
        f"shortest {first.shortest_s:.0f} s), {statistics.median(r.wall_s for r in runs):.2f} s "
        f"the whole command: {ratio:.3f} of the rate (goal >= 0.95); busiest second at the "
        f"emulator {max(r.busiest_second for r in runs)}, throttle answers "
        f"{sum(r.throttle_answers for r in runs)}, {first.items} items"
    )
