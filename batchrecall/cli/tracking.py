"""What a run has done so far, per lane and in all: counts, rates and ETAs for the progress
display and the progress log. Fed by the engine's ProgressSink calls; clocks are injected."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from batchrecall.intake.plan import Plan
from batchrecall.models import LaneKey, Status
from batchrecall.results.recorder import LaneState, ProgressSink

Clock = Callable[[], float]

RATE_WINDOW_S = 10.0
"""Rates are measured over the last this many seconds."""
BUCKET_S = 0.1
"""A rate's resolution: events this close together are counted in one slot."""
_MIN_MEASURED_S = 2.0
"""A measured rate needs this much history before an ETA trusts it over the planned rate."""


@dataclass(frozen=True, slots=True)
class LaneSnapshot:
    """One lane (or, with `lane` None, the whole run) at one moment."""

    name: str
    total: int
    done: int
    statuses: Counter[str]
    state: str
    """sending, throttled, pacing, stopped, done, waiting."""
    until: float | None
    reason: str
    calls_per_s: float | None
    """Requests sent a second lately; None where no request was reported."""
    items_per_s: float
    rate: float
    eta_s: float

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def settled(self) -> int:
        """Items with nothing left to do: ok and not_found."""
        return self.statuses[Status.OK] + self.statuses[Status.NOT_FOUND]

    @property
    def failed(self) -> int:
        return self.statuses[Status.FAILED] + self.statuses[Status.UNKNOWN]


class RateWindow:
    """Counts of the last RATE_WINDOW_S seconds, for a rate, in slots of BUCKET_S: a run that
    writes 10,000 rows a second keeps 100 slots, not 100,000 events (kept event by event, they
    were the whole rise of a long run's peak RSS: 62 to 86 MiB from 20,000 to 200,000 items)."""

    def __init__(self) -> None:
        self._slots: deque[list[float]] = deque()  # [start, count]
        self.first: float | None = None
        self.last: float | None = None
        self.total = 0

    def add(self, now: float, count: int) -> None:
        if self.first is None:
            self.first = now
        self.last = now
        self.total += count
        slots = self._slots
        if slots and now - slots[-1][0] < BUCKET_S:
            slots[-1][1] += count
            return
        slots.append([now, count])
        self._forget_before(now)

    def _forget_before(self, now: float) -> None:
        while self._slots and now - self._slots[0][0] > RATE_WINDOW_S:
            self._slots.popleft()

    def __len__(self) -> int:
        """Slots kept."""
        return len(self._slots)

    def average(self) -> float:
        """Over the whole time events came: a finished lane's rate."""
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return self.total / (self.last - self.first)

    def rate(self, now: float) -> float:
        self._forget_before(now)
        if self.first is None:
            return 0.0
        span = min(RATE_WINDOW_S, now - self.first)
        if span <= 0:
            return 0.0
        return sum(n for _, n in self._slots) / span

    def measured_for(self, now: float) -> float:
        return 0.0 if self.first is None else now - self.first


@dataclass
class _Lane:
    name: str
    total: int
    rate: float
    planned_s: float
    duplicates: int = 0
    """Repeats the plan expects: the `skipped` rows that are no sign of a stop."""
    statuses: Counter[str] = field(default_factory=Counter)
    rows: RateWindow = field(default_factory=RateWindow)
    calls: RateWindow = field(default_factory=RateWindow)
    state: LaneState | None = None

    @property
    def done(self) -> int:
        return sum(self.statuses.values())


class RunTracker(ProgressSink):
    """Counts rows and calls per lane as the engine reports them, and tells rates and ETAs.

    The engine calls it from the event loop; a display reads it from another thread, so every
    access holds a lock. `clock` is monotonic seconds, `wall` epoch seconds (throttle ends).
    """

    def __init__(
        self, plan: Plan, *, clock: Clock = time.monotonic, wall: Clock = time.time
    ) -> None:
        self.clock = clock
        self.wall = wall
        self.started = clock()
        self._lock = threading.Lock()
        self._lanes: dict[LaneKey, _Lane] = {
            key: _Lane(
                name=str(key),
                total=lane.rows,
                rate=lane.rate,
                planned_s=lane.estimated_s(),
                duplicates=lane.duplicates,
            )
            for key, lane in sorted(plan.lanes.items())
        }
        self._invalid_total = plan.invalid_count - plan.invalid_settled
        self._invalid = 0
        self._all_rows = RateWindow()
        self._calls_reported = False
        self.stopping_in_flight: int | None = None

    # -- ProgressSink --------------------------------------------------------------------------

    def rows_written(self, lane: LaneKey | None, status: Status, count: int) -> None:
        with self._lock:
            if lane is None:
                self._invalid += count
                return
            tracked = self._lane(lane)
            tracked.statuses[status] += count
            now = self.clock()
            tracked.rows.add(now, count)
            self._all_rows.add(now, count)

    def call_sent(self, lane: LaneKey) -> None:
        with self._lock:
            self._calls_reported = True
            self._lane(lane).calls.add(self.clock(), 1)

    def lane_state(self, lane: LaneKey, state: LaneState) -> None:
        with self._lock:
            self._lane(lane).state = state

    def stopping(self, in_flight: int) -> None:
        with self._lock:
            self.stopping_in_flight = in_flight

    # -- reading -------------------------------------------------------------------------------

    def lanes(self) -> list[LaneSnapshot]:
        with self._lock:
            now = self.clock()
            return [self._snapshot(lane, now) for lane in self._lanes.values()]

    def overall(self, lanes: list[LaneSnapshot] | None = None) -> LaneSnapshot:
        """The whole run: every lane's rows and the invalid rows; its ETA is the largest lane's."""
        lanes = self.lanes() if lanes is None else lanes
        with self._lock:
            statuses: Counter[str] = Counter()
            for lane in lanes:
                statuses.update(lane.statuses)
            statuses[Status.INVALID] += self._invalid
            total = sum(lane.total for lane in lanes) + max(self._invalid_total, self._invalid)
            calls = [lane.calls_per_s for lane in lanes if lane.calls_per_s is not None]
            if all(lane.state in ("done", "stopped") for lane in lanes):
                state = "stopped" if any(lane.state == "stopped" for lane in lanes) else "done"
            elif self.stopping_in_flight is not None:
                state = "stopping"
            else:
                state = "sending"
            return LaneSnapshot(
                name="all lanes",
                total=total,
                done=sum(statuses.values()),
                statuses=statuses,
                state=state,
                until=None,
                reason="",
                calls_per_s=sum(calls) if calls else None,
                items_per_s=(
                    self._all_rows.average()
                    if state in ("done", "stopped")
                    else self._all_rows.rate(self.clock())
                ),
                rate=sum(lane.rate for lane in lanes),
                eta_s=max((lane.eta_s for lane in lanes), default=0.0),
            )

    def elapsed_s(self) -> float:
        return self.clock() - self.started

    def _lane(self, key: LaneKey) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:  # a lane the plan did not foresee: count it all the same
            lane = self._lanes[key] = _Lane(name=str(key), total=0, rate=0.0, planned_s=0.0)
        return lane

    def _snapshot(self, lane: _Lane, now: float) -> LaneSnapshot:
        done = lane.done
        total = max(lane.total, done)
        state, until, reason = self._state(lane, done, total)
        finished = state in ("done", "stopped")
        items_per_s = lane.rows.average() if finished else lane.rows.rate(now)
        return LaneSnapshot(
            name=lane.name,
            total=total,
            done=done,
            statuses=Counter(lane.statuses),
            state=state,
            until=until,
            reason=reason,
            calls_per_s=self._calls_per_s(lane, now, finished),
            items_per_s=items_per_s,
            rate=lane.rate,
            eta_s=self._eta(lane, done, total, items_per_s, now, state),
        )

    def _calls_per_s(self, lane: _Lane, now: float, finished: bool) -> float | None:
        if not self._calls_reported:
            return None
        return lane.calls.average() if finished else lane.calls.rate(now)

    def _state(self, lane: _Lane, done: int, total: int) -> tuple[str, float | None, str]:
        reported = lane.state
        if reported is not None and reported.kind == "stopped":
            return "stopped", None, reported.reason
        if done >= total or (reported is not None and reported.kind == "done"):
            # More skipped rows than the plan's repeats: the run stopped before sending them.
            unsent = lane.statuses[Status.SKIPPED] - lane.duplicates
            if unsent > 0:
                return "stopped", None, f"{unsent:,} not sent"
            return "done", None, ""
        if reported is not None and reported.kind == "throttled":
            if reported.until is not None and reported.until > self.wall():
                return "throttled", reported.until, ""
            return "sending", None, ""
        if reported is not None:
            return reported.kind, None, reported.reason
        return ("sending" if done else "waiting"), None, ""

    @staticmethod
    def _eta(
        lane: _Lane, done: int, total: int, items_per_s: float, now: float, state: str
    ) -> float:
        """What is left at the lane's rate (its plan), or at the rate measured lately when that
        is slower (latency, throttling): an ETA never promises more than the rate allows."""
        if state in ("done", "stopped") or total <= 0:
            return 0.0
        left = total - done
        by_rate = lane.planned_s * left / total
        if lane.rows.measured_for(now) >= _MIN_MEASURED_S and items_per_s > 0:
            return max(by_rate, left / items_per_s)
        return by_rate


def stopping_line(in_flight: int) -> str:
    """What the first Ctrl-C says at once."""
    return f"stopping: {in_flight} calls in flight, press Ctrl-C again to abandon them"


class TrackedProgress(ProgressSink):
    """A progress sink that keeps its counts in a `RunTracker` and shows them its own way; it
    says the stopping line through `announce_stop`."""

    def __init__(self, tracker: RunTracker) -> None:
        self.tracker = tracker

    def rows_written(self, lane: LaneKey | None, status: Status, count: int) -> None:
        self.tracker.rows_written(lane, status, count)

    def call_sent(self, lane: LaneKey) -> None:
        self.tracker.call_sent(lane)

    def lane_state(self, lane: LaneKey, state: LaneState) -> None:
        self.tracker.lane_state(lane, state)

    def stopping(self, in_flight: int) -> None:
        self.tracker.stopping(in_flight)
        self.announce_stop(in_flight)

    def announce_stop(self, in_flight: int) -> None:
        """Say the stopping line (the display prints it, the log logs it)."""
