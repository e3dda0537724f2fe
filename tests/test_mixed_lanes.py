"""One job for every vendor and two apps of one vendor: lanes run side by side, each at its rate."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from batchrecall.emulators.common import LoggedRequest
from batchrecall.emulators.server import EmulatorSet
from batchrecall.models import LaneKey, Vendor
from batchrecall.results.summary import ExitCode
from batchrecall.run.clock import VirtualClock
from tests.harness import Harness

EASEMOB = LaneKey(vendor=Vendor.EASEMOB, app="default")
SECOND = LaneKey(vendor=Vendor.EASEMOB, app="second")
GOEASY = LaneKey(vendor=Vendor.GOEASY, app="default")
YUNXIN = LaneKey(vendor=Vendor.YUNXIN, app="default")
RATES = {EASEMOB: 20.0, SECOND: 4.0, GOEASY: 2.0, YUNXIN: 25.0}

Row = dict[str, Any]


def easemob_rows(app: str, first: int, n: int) -> list[Row]:
    return [
        {
            "vendor": "easemob",
            "app": app,
            "op": "recall",
            "msg_id": str(first + i),
            "to": "user-b",
            "chat_type": "chat",
        }
        for i in range(n)
    ]


DEFAULT_IDS = 1_700_000_000_000_000_000
SECOND_IDS = 1_800_000_000_000_000_000
GOEASY_MS = 1_763_200_000_000


class EventClock(VirtualClock):
    """Virtual time that moves only while every task waits, straight to the next wake-up.

    With the plain VirtualClock each sleep moves time at once, so a request sent right after
    its rate permit can reach the emulator later in virtual time, while another task sleeps;
    here a request reaches the emulator at the instant it was sent, and the emulator's log
    shows the lanes' real spacing.
    """

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self._wakeups: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        self.slept.append(seconds)
        wakeup = anyio.Event()
        heapq.heappush(self._wakeups, (self.time + seconds, next(self._order), wakeup))
        await wakeup.wait()

    async def drive(self) -> None:
        """Run beside the code under test: when nothing else can run, wake the next sleeper."""
        loop = asyncio.get_running_loop()
        while True:
            await anyio.lowlevel.checkpoint()
            if getattr(loop, "_ready", None) or not self._wakeups:
                continue  # some task can still run at this instant
            when, _, wakeup = heapq.heappop(self._wakeups)
            self.time = max(self.time, when)
            wakeup.set()


def with_event_clock(harness: Harness) -> EventClock:
    """Give the harness (emulators, lanes, adapters) an EventClock instead of its own."""
    clock = EventClock(harness.clock.now())
    harness.clock = clock
    harness.emulators = EmulatorSet(harness.settings, clock=clock.now)
    return clock


def job_rows() -> list[Row]:
    default = easemob_rows("default", DEFAULT_IDS, 40)
    second = easemob_rows("second", SECOND_IDS, 12)
    goeasy = [  # one full call of 20 timestamps a row
        {
            "vendor": "goeasy",
            "op": "recall",
            "groupId": f"g-{g}",
            "messages": [GOEASY_MS + 100 * g + i for i in range(20)],
        }
        for g in range(10)
    ]
    yunxin = [
        {
            "vendor": "yunxin",
            "op": "recall",
            "conversation_id": "a|1|b",
            "message_server_id": str(990_000 + i),
        }
        for i in range(40)
    ]
    rows: list[Row] = []
    # Interleaved, so that no lane gets a head start from the order of the file.
    for i in range(40):
        rows.append(default[i])
        rows.append(yunxin[i])
        if i < len(second):
            rows.append(second[i])
        if i < len(goeasy):
            rows.append(goeasy[i])
    return rows


def busiest_second(times: Sequence[float]) -> int:
    """The most requests in any sliding 1-second window."""
    ordered = sorted(times)
    return max((sum(1 for t in ordered if s <= t < s + 1.0) for s in ordered), default=0)


def item_requests(harness: Harness, vendor: str) -> list[LoggedRequest]:
    return [r for r in harness.requests(vendor) if r.items]


@pytest.mark.anyio
async def test_every_lane_runs_side_by_side_at_its_own_rate(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    # A second Easemob app: same emulator and credentials, its own lane and rate.
    lanes = dict(harness.config.lanes)
    lanes[SECOND] = replace(lanes[EASEMOB], lane=SECOND)
    harness.config = replace(harness.config, lanes=lanes)
    for key, rate in RATES.items():
        harness.set_lane(
            key, rate=rate, **({"batch_recall": False} if key in (EASEMOB, SECOND) else {})
        )
    clock = with_event_clock(harness)
    harness.write_job(job_rows())
    harness.seed()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(clock.drive)
        with anyio.fail_after(30):  # a guard in real seconds: a stuck run fails, never hangs
            outcome = await harness.run()
        tasks.cancel_scope.cancel()

    assert len(outcome.rows) == 40 + 12 + 200 + 40
    assert set(outcome.statuses().values()) == {"ok"}
    assert outcome.summary.exit_code() == ExitCode.OK
    assert not [r for r in harness.requests() if r.status != 200], "no vendor had to refuse"
    apps = {row["app"] for row in outcome.rows if row["vendor"] == "easemob"}
    assert apps == {"default", "second"}

    # The two Easemob apps share one emulator: their requests are told apart by their items.
    easemob = item_requests(harness, "easemob")
    by_lane = {
        EASEMOB: [r for r in easemob if all(m.startswith("17") for m in r.items)],
        SECOND: [r for r in easemob if all(m.startswith("18") for m in r.items)],
        GOEASY: item_requests(harness, "goeasy"),
        YUNXIN: item_requests(harness, "yunxin"),
    }
    assert len(by_lane[EASEMOB]) + len(by_lane[SECOND]) == len(easemob)
    counts = {key: len(requests) for key, requests in by_lane.items()}
    assert counts == {EASEMOB: 40, SECOND: 12, GOEASY: 10, YUNXIN: 40}
    for key, requests in by_lane.items():
        busiest = busiest_second([r.time for r in requests])
        assert busiest <= RATES[key], f"{key}: {busiest} requests in one second"

    # Side by side: every lane starts at once and ends at its own pace, not the slowest one's.
    start = min(r.time for r in harness.requests())
    first = {key: min(r.time for r in requests) for key, requests in by_lane.items()}
    last = {key: max(r.time for r in requests) for key, requests in by_lane.items()}
    assert all(t - start < 0.1 for t in first.values()), first
    for key in by_lane:
        own_pace = (counts[key] - 1) / RATES[key]
        assert own_pace <= last[key] - start <= own_pace * 1.1 + 0.1, key
    assert last[YUNXIN] < last[GOEASY] - 2.0
    assert last[EASEMOB] < last[SECOND] < last[GOEASY]


@pytest.mark.anyio
async def test_a_slow_lane_with_a_long_backlog_does_not_hold_up_a_fast_one(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.set_lane(GOEASY, rate=2.0)
    harness.set_lane(YUNXIN, rate=25.0)
    clock = with_event_clock(harness)
    goeasy = [  # 60 full calls of one conversation
        {
            "vendor": "goeasy",
            "op": "recall",
            "groupId": "g-0",
            "messages": [GOEASY_MS + 20 * g + i for i in range(20)],
        }
        for g in range(60)
    ]
    yunxin = [
        {
            "vendor": "yunxin",
            "op": "recall",
            "conversation_id": "a|1|b",
            "message_server_id": str(880_000 + i),
        }
        for i in range(120)
    ]
    # The slow lane's rows come first: a single reader would queue them and wait on that lane.
    harness.write_job([*goeasy, *yunxin])
    harness.seed()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(clock.drive)
        with anyio.fail_after(30):
            outcome = await harness.run()
        tasks.cancel_scope.cancel()
    assert set(outcome.statuses().values()) == {"ok"}
    start = min(r.time for r in harness.requests())
    yunxin_done = max(r.time for r in item_requests(harness, "yunxin")) - start
    goeasy_done = max(r.time for r in item_requests(harness, "goeasy")) - start
    assert yunxin_done <= 119 / 25.0 * 1.1 + 0.1
    assert goeasy_done >= 59 / 2.0
