"""Counting a run's outcomes, and the exit code they add up to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from batchrecall.errors import ErrorCode
from batchrecall.errors import ExitCode as ExitCode  # its home was here: still importable
from batchrecall.keystore import KeyStore
from batchrecall.models import ResultRow, Status
from batchrecall.results.phrases import count_phrase as count_phrase  # its home was here
from batchrecall.results.store import is_done


class _LaneView(Protocol):
    @property
    def fatal(self) -> Any: ...

    @property
    def stats(self) -> Any: ...


@dataclass
class Summary:
    """Counts per status, per lane and per error code; items kept from an earlier run apart.

    Items, invalid rows and duplicates are counted apart, the way the plan and the report count
    them: `statuses` holds every row this run wrote, `item_statuses` only its items.
    """

    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lanes: dict[str, Counter[str]] = field(default_factory=dict)
    """Per lane, the statuses of this run's items (duplicates apart, in `lane_duplicates`)."""
    lane_duplicates: Counter[str] = field(default_factory=Counter)
    kept_statuses: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    """Rows this run wrote as `skipped` / `duplicate`."""
    kept_duplicates: int = 0
    """Repeats of items an earlier run settled (no row written for them)."""
    started: float = 0.0
    finished: float = 0.0
    stopped_lanes: dict[str, str] = field(default_factory=dict)
    throttles: dict[str, int] = field(default_factory=dict)
    stop_reason: str = ""
    left_to_do: int = 0
    """Items this run leaves to do: rows that settle nothing, and `left_unread`."""
    left_unread: int = 0
    """Items an interrupt left without a row, never read from their lane's part of the job:
    left to do (`--resume` and `report` count them)."""
    _kept_keys: KeyStore | None = None

    def start(self, now: float) -> None:
        self.started = now

    def finish(self, now: float, lanes: Mapping[Any, _LaneView]) -> None:
        self.finished = now
        self.left_to_do += self.left_unread
        for key, lane in lanes.items():
            if lane.fatal is not None:
                self.stopped_lanes[str(key)] = str(lane.fatal.code)
            self.throttles[str(key)] = int(lane.stats.throttles)
        if self._kept_keys is not None:
            self._kept_keys.close()
            self._kept_keys = None

    def add_kept(self, statuses: Mapping[str, int], duplicates: int) -> None:
        """Items, invalid rows and repeats an earlier run settled, as the plan's pass counted
        them (no row is written for them)."""
        self.kept_statuses.update(statuses)
        self.kept_duplicates += duplicates

    def add(self, row: ResultRow) -> None:
        self.statuses[row.status] += 1
        if not is_done(row.status, row.error):
            self.left_to_do += 1
        if row.error:
            self.errors[row.error] += 1
        lane = f"{row.vendor}.{row.app}"
        if row.error == ErrorCode.DUPLICATE:
            self.duplicates += 1
            self.lane_duplicates[lane] += 1
        elif row.status != Status.INVALID:
            self.lanes.setdefault(lane, Counter())[row.status] += 1

    def kept(self, status: str, error: str, item_key: str | None = None) -> None:
        """An item whose outcome an earlier run already settled (resume).

        Given its `item_key`, a repeat of an item already kept counts as a duplicate.
        """
        if error == ErrorCode.DUPLICATE:
            self.kept_duplicates += 1
            return
        if item_key is not None and status != Status.INVALID:
            if self._kept_keys is None:
                self._kept_keys = KeyStore()
            if not self._kept_keys.add_new(item_key):
                self.kept_duplicates += 1
                return
        self.kept_statuses[status] += 1

    @property
    def item_statuses(self) -> Counter[str]:
        """This run's items by status: its rows less invalid rows and duplicates."""
        counts = Counter(self.statuses)
        counts[Status.SKIPPED] -= self.duplicates
        del counts[Status.INVALID]
        return +counts

    @property
    def item_errors(self) -> Counter[str]:
        """Error codes of this run's items (an invalid row or a duplicate is no item)."""
        counts = Counter(self.errors)
        for code in (ErrorCode.INVALID_ROW, ErrorCode.DUPLICATE):
            counts.pop(code, None)
        return counts

    @property
    def kept_items(self) -> int:
        return sum(n for status, n in self.kept_statuses.items() if status != Status.INVALID)

    @property
    def items_this_run(self) -> int:
        return sum(self.item_statuses.values())

    @property
    def items(self) -> int:
        """Every distinct item of the jobs: written by this run or settled by an earlier one."""
        return self.items_this_run + self.kept_items

    @property
    def invalid_rows(self) -> int:
        return self.statuses[Status.INVALID] + self.kept_statuses[Status.INVALID]

    @property
    def all_duplicates(self) -> int:
        return self.duplicates + self.kept_duplicates

    @property
    def duration_s(self) -> float:
        return max(0.0, self.finished - self.started)

    def exit_code(self) -> ExitCode:
        if self.stop_reason == ErrorCode.INTERRUPTED:
            return ExitCode.INTERRUPTED
        if self.stop_reason == ErrorCode.HALTED or self.stopped_lanes:
            return ExitCode.HALTED
        bad = {Status.FAILED, Status.INVALID, Status.UNKNOWN, Status.SKIPPED}
        every = self.item_statuses + self.kept_statuses
        every[Status.INVALID] = self.invalid_rows
        if any(every.get(s, 0) for s in bad):
            return ExitCode.INCOMPLETE
        return ExitCode.OK
