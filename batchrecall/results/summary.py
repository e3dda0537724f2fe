"""Counting a run's outcomes, and the exit code they add up to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

from batchrecall.errors import ErrorCode
from batchrecall.models import ResultRow, Status
from batchrecall.results.store import is_done


class ExitCode(IntEnum):
    OK = 0
    INCOMPLETE = 1
    USAGE = 2
    HALTED = 3
    INTERNAL = 4
    INTERRUPTED = 130


class _LaneView(Protocol):
    @property
    def fatal(self) -> Any: ...

    @property
    def stats(self) -> Any: ...


@dataclass
class Summary:
    """Counts per status, per lane and per error code; items kept from an earlier run apart."""

    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lanes: dict[str, Counter[str]] = field(default_factory=dict)
    kept_statuses: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    started: float = 0.0
    finished: float = 0.0
    stopped_lanes: dict[str, str] = field(default_factory=dict)
    throttles: dict[str, int] = field(default_factory=dict)
    stop_reason: str = ""
    left_to_do: int = 0

    def start(self, now: float) -> None:
        self.started = now

    def finish(self, now: float, lanes: Mapping[Any, _LaneView]) -> None:
        self.finished = now
        for key, lane in lanes.items():
            if lane.fatal is not None:
                self.stopped_lanes[str(key)] = str(lane.fatal.code)
            self.throttles[str(key)] = int(lane.stats.throttles)

    def add(self, row: ResultRow) -> None:
        self.statuses[row.status] += 1
        if not is_done(row.status, row.error):
            self.left_to_do += 1
        if row.error:
            self.errors[row.error] += 1
        if row.error == ErrorCode.DUPLICATE:
            self.duplicates += 1
        if row.status != Status.INVALID:
            self.lanes.setdefault(f"{row.vendor}.{row.app}", Counter())[row.status] += 1

    def kept(self, status: str, error: str) -> None:
        """An item whose outcome an earlier run already settled (resume)."""
        self.kept_statuses[status] += 1
        if error == ErrorCode.DUPLICATE:
            self.duplicates += 1

    @property
    def items(self) -> int:
        return sum(self.statuses.values())

    @property
    def duration_s(self) -> float:
        return max(0.0, self.finished - self.started)

    def exit_code(self) -> ExitCode:
        if self.stop_reason == ErrorCode.INTERRUPTED:
            return ExitCode.INTERRUPTED
        if self.stop_reason == ErrorCode.HALTED or self.stopped_lanes:
            return ExitCode.HALTED
        bad = {Status.FAILED, Status.INVALID, Status.UNKNOWN}
        every = self.statuses + self.kept_statuses
        if any(every.get(s, 0) for s in bad):
            return ExitCode.INCOMPLETE
        if every.get(Status.SKIPPED, 0) > self.duplicates:
            return ExitCode.INCOMPLETE
        return ExitCode.OK
