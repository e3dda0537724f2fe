"""Progress: counts, rates and ETAs per lane, the terminal lines at any width, the progress log."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import orjson
import pytest
from rich.console import Console
from structlog.testing import capture_logs

from batchrecall.cli.progress import TerminalProgress, compact, render_lines
from batchrecall.cli.progress_log import LogProgress
from batchrecall.cli.tracking import BUCKET_S, RATE_WINDOW_S, LaneSnapshot, RateWindow, RunTracker
from batchrecall.models import JobRef, LaneKey, Status, Vendor
from batchrecall.results.recorder import LaneState
from batchrecall.run.runner import plan_job

EASEMOB = LaneKey(vendor=Vendor.EASEMOB, app="default")
YUNXIN = LaneKey(vendor=Vendor.YUNXIN, app="default")


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _job(tmp_path: Path) -> list[JobRef]:
    """60 Easemob recalls (2 calls), 100 Yunxin recalls (100 calls), a repeat, a bad row."""
    rows: list[dict[str, object]] = [
        {"vendor": "easemob", "op": "recall", "msg_id": str(10**18 + i), "to": "u",
         "chat_type": "chat"}
        for i in range(60)
    ]  # fmt: skip
    rows += [
        {"vendor": "yunxin", "op": "recall", "conversation_id": "a|1|b",
         "message_server_id": str(5000 + i)}
        for i in range(100)
    ]  # fmt: skip
    rows.append(rows[0])
    rows.append({"vendor": "easemob", "op": "recall"})
    path = tmp_path / "job.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return [JobRef(path=path, name=str(path))]


@pytest.fixture
def clocks() -> tuple[FakeClock, FakeClock]:
    return FakeClock(1000.0), FakeClock(1_700_000_000.0)


@pytest.fixture
def tracker(tmp_path: Path, clocks: tuple[FakeClock, FakeClock]) -> RunTracker:
    clock, wall = clocks
    return RunTracker(plan_job(_job(tmp_path), config=None), clock=clock, wall=wall)


def _lane(tracker: RunTracker, name: str) -> LaneSnapshot:
    return next(lane for lane in tracker.lanes() if lane.name == name)


def test_invalid_rows_and_duplicates_advance_the_run_to_100_percent(tracker: RunTracker) -> None:
    overall = tracker.overall()
    assert overall.total == 60 + 100 + 1 + 1  # items, the repeat, the invalid row
    tracker.rows_written(None, Status.INVALID, 1)
    tracker.rows_written(EASEMOB, Status.OK, 60)
    tracker.rows_written(EASEMOB, Status.SKIPPED, 1)  # the repeat
    tracker.rows_written(YUNXIN, Status.OK, 99)
    tracker.rows_written(YUNXIN, Status.FAILED, 1)
    overall = tracker.overall()
    assert (overall.done, overall.fraction, overall.state) == (162, 1.0, "done")
    assert (overall.settled, overall.failed) == (159, 1)
    assert _lane(tracker, "easemob.default").state == "done"


def test_lane_eta_is_what_is_left_at_its_rate_and_the_run_takes_the_largest(
    tracker: RunTracker,
) -> None:
    # Yunxin: 100 calls at the default 50/s are 2 s; Easemob: 2 calls at 50/s, 0.04 s.
    assert _lane(tracker, "yunxin.default").eta_s == pytest.approx(2.0)
    assert tracker.overall().eta_s == pytest.approx(2.0)
    tracker.rows_written(YUNXIN, Status.OK, 50)
    assert _lane(tracker, "yunxin.default").eta_s == pytest.approx(1.0)


def test_eta_follows_a_measured_rate_slower_than_the_lanes(
    tracker: RunTracker, clocks: tuple[FakeClock, FakeClock]
) -> None:
    clock, _ = clocks
    for _ in range(5):
        clock.now += 1.0
        tracker.rows_written(YUNXIN, Status.OK, 4)  # 4 items/s: latency or throttling
    lane = _lane(tracker, "yunxin.default")
    # 80 left at the measured 4/s, not the 1.6 s the lane's rate alone would promise.
    assert lane.items_per_s == pytest.approx(4.0, rel=0.3)
    assert lane.eta_s == pytest.approx(80 / lane.items_per_s)
    assert lane.eta_s > 80 / 50


def test_throttled_until_then_sending_again(
    tracker: RunTracker, clocks: tuple[FakeClock, FakeClock]
) -> None:
    _, wall = clocks
    tracker.rows_written(YUNXIN, Status.OK, 1)
    tracker.lane_state(YUNXIN, LaneState(kind="throttled", until=wall.now + 10))
    lane = _lane(tracker, "yunxin.default")
    assert (lane.state, lane.until) == ("throttled", wall.now + 10)
    wall.now += 11
    assert _lane(tracker, "yunxin.default").state == "sending"


def test_a_stopped_lane_says_why(tracker: RunTracker) -> None:
    tracker.lane_state(EASEMOB, LaneState(kind="stopped", reason="auth-failed"))
    lane = _lane(tracker, "easemob.default")
    assert (lane.state, lane.reason, lane.eta_s) == ("stopped", "auth-failed", 0.0)


def test_calls_per_second_against_the_rate(
    tracker: RunTracker, clocks: tuple[FakeClock, FakeClock]
) -> None:
    clock, _ = clocks
    assert _lane(tracker, "yunxin.default").calls_per_s is None  # nothing reported yet
    for _ in range(20):
        clock.now += 0.1
        tracker.call_sent(YUNXIN)
    assert _lane(tracker, "yunxin.default").calls_per_s == pytest.approx(10.0, rel=0.1)


def _snapshot(name: str, done: int, total: int, state: str, **extra: object) -> LaneSnapshot:
    fields: dict[str, object] = {
        "name": name,
        "total": total,
        "done": done,
        "statuses": Counter({Status.OK: done - 345, Status.FAILED: 345}),
        "state": state,
        "until": None,
        "reason": "",
        "calls_per_s": 48.7,
        "items_per_s": 1461.0,
        "rate": 50.0,
        "eta_s": 3723.0,
    }
    fields.update(extra)
    return LaneSnapshot(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
def test_lines_keep_bar_counts_and_eta_at_any_width(width: int) -> None:
    lanes = [
        _snapshot("easemob.production-eu", 123_456, 600_000, "throttled", until=1e9),
        _snapshot("yunxin.default", 12_345, 60_000, "stopped", reason="quota-exhausted"),
        _snapshot("goeasy.default", 1_000, 60_000, "pacing"),
    ]
    overall = _snapshot("all lanes", 136_801, 720_000, "sending", calls_per_s=None)
    lines = [line.plain for line in render_lines(overall, lanes, width)]
    assert len(lines) == 4
    for line, lane in zip(lines, [overall, *lanes], strict=True):
        assert len(line) <= width, line
        assert "━━━━━━━━" in line  # the bar, at least its minimum
        counts = (f"{lane.done:,}/{lane.total:,}", f"{compact(lane.done)}/{compact(lane.total)}")
        assert counts[0] in line or counts[1] in line
        assert "ETA " in line
    if width >= 80:
        assert "✓123k ✗345" in lines[1] or "✓123,111 ✗345" in lines[1]
        assert "throttled" in lines[1]
    if width >= 120:
        assert "throttled until" in lines[1]
        assert "stopped: quota-exhausted" in lines[2]
        assert "49/50 calls/s" in lines[1]


def test_log_progress_every_ten_seconds_with_counts_rate_and_eta(
    tracker: RunTracker, clocks: tuple[FakeClock, FakeClock]
) -> None:
    clock, _ = clocks
    sink = LogProgress(tracker)
    with capture_logs() as events:
        sink.rows_written(YUNXIN, Status.OK, 20)
        clock.now += 9.9
        assert not sink.tick()
        clock.now += 0.1
        assert sink.tick()
        clock.now += 5
        assert not sink.tick()
        clock.now += 5
        sink.rows_written(YUNXIN, Status.FAILED, 10)
        assert sink.tick()
    progress = [e for e in events if e["event"] == "batchrecall.progress"]
    assert len(progress) == 2
    last = progress[-1]
    assert (last["done"], last["total"], last["statuses"]) == (30, 162, {"ok": 20, "failed": 10})
    assert last["eta_s"] >= 0
    assert "items_per_s" in last
    assert last["lanes"]["yunxin.default"]["done"] == 30
    assert last["lanes"]["yunxin.default"]["state"] == "sending"


def test_stopping_says_so_at_once(tracker: RunTracker) -> None:
    said: list[str] = []
    sink = LogProgress(tracker, say=said.append)
    with capture_logs() as events:
        sink.stopping(3)
    assert said == ["stopping: 3 calls in flight, press Ctrl-C again to abandon them"]
    assert events[0]["in_flight"] == 3
    assert tracker.overall().state == "stopping"


def test_a_lane_that_ends_with_items_not_sent_shows_stopped_not_done(tracker: RunTracker) -> None:
    tracker.rows_written(EASEMOB, Status.OK, 30)
    tracker.rows_written(EASEMOB, Status.SKIPPED, 31)  # the planned repeat, and 30 interrupted
    lane = _lane(tracker, "easemob.default")
    assert (lane.done, lane.total) == (61, 61)
    assert (lane.state, lane.reason) == ("stopped", "30 not sent")


def test_the_display_says_at_once_that_it_is_stopping(tracker: RunTracker) -> None:
    screen = io.StringIO()
    display = TerminalProgress(tracker, Console(file=screen, width=80))
    display.stopping(4)
    assert screen.getvalue() == "stopping: 4 calls in flight, press Ctrl-C again to abandon them\n"
    assert tracker.overall().state == "stopping"


def test_a_rate_window_keeps_slots_not_events() -> None:
    window = RateWindow()
    for i in range(100_000):  # 10,000 rows a second for 10 seconds, one at a time
        window.add(i / 10_000, 1)
    assert len(window) <= RATE_WINDOW_S / BUCKET_S + 1
    assert window.rate(10.0) == pytest.approx(10_000, rel=0.02)
    window.add(30.0, 5)  # a quiet spell: what came before it has left the window
    assert len(window) == 1
    assert window.total == 100_005
