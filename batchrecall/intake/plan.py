"""The plan shown before a run: items and calls per lane, duplicates, invalid rows, duration."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from batchrecall.intake.planner import Planner
from batchrecall.intake.reader import read_job
from batchrecall.models import (
    USER_PACING_PERIOD_S,
    USER_PACING_RATE,
    InvalidRow,
    Item,
    JobRef,
    LaneKey,
    Op,
    Vendor,
)


@dataclass
class LanePlan:
    items: Counter[Op] = field(default_factory=Counter)
    calls: Counter[Op] = field(default_factory=Counter)
    per_key_calls: Counter[str] = field(default_factory=Counter)
    rate: float = 0.0
    duplicates: int = 0
    """Repeats of this lane's items that get a `skipped` / `duplicate` row in this run."""

    @property
    def total_items(self) -> int:
        return sum(self.items.values())

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def rows(self) -> int:
        """Result rows this lane writes in the run: one per item and one per repeat."""
        return self.total_items + self.duplicates

    def estimated_s(self) -> float:
        by_rate = self.total_calls / self.rate if self.rate else 0.0
        busiest = max(self.per_key_calls.values(), default=0)
        by_key = (
            math.ceil(busiest / USER_PACING_RATE - 1) * USER_PACING_PERIOD_S
            if busiest > USER_PACING_RATE
            else 0.0
        )
        return max(by_rate, by_key)


@dataclass(frozen=True, slots=True)
class Repeat:
    """A row that repeats an item of an earlier row (`first_line` 0 where it was not found)."""

    job: str
    line: int
    first_job: str
    first_line: int


@dataclass
class Plan:
    """What a run of the jobs will do. Items, invalid rows and duplicates are counted apart:
    `items` are distinct items to send, `already_done` distinct items an earlier run settled."""

    lanes: dict[LaneKey, LanePlan] = field(default_factory=dict)
    invalid: list[InvalidRow] = field(default_factory=list)
    invalid_count: int = 0
    invalid_settled: int = 0
    """Invalid rows already in the results file (resume): no new row is written for them."""
    duplicates: int = 0
    repeats: list[Repeat] = field(default_factory=list)
    """The first repeated rows, with the row each repeats."""
    already_done: int = 0

    @property
    def rows(self) -> int:
        """Result rows the run will write: its items, repeats and new invalid rows."""
        lane_rows = sum(lane.rows for lane in self.lanes.values())
        return lane_rows + self.invalid_count - self.invalid_settled

    @property
    def items(self) -> int:
        """Items to send (an earlier run's settled ones apart, in `already_done`)."""
        return sum(sum(lane.items.values()) for lane in self.lanes.values())

    @property
    def settled_repeats(self) -> int:
        """Repeats of items an earlier run settled: counted, but given no new row."""
        return self.duplicates - sum(lane.duplicates for lane in self.lanes.values())

    @property
    def calls(self) -> int:
        return sum(lane.total_calls for lane in self.lanes.values())

    def estimated_s(self) -> float:
        return max((lane.estimated_s() for lane in self.lanes.values()), default=0.0)


_MAX_INVALID_KEPT = 50
_MAX_REPEATS_KEPT = 20


def build_plan(
    jobs: Sequence[JobRef],
    *,
    limit: Callable[[Item], int],
    rate: Callable[[LaneKey], float],
    is_done: Callable[[str], bool] | None = None,
    keep: Callable[[Item | InvalidRow], bool] | None = None,
) -> Plan:
    """Read the jobs once and plan them as the run would, without sending anything.

    `limit` is the items a call of this item's lane and op carries, `rate` a lane's requests per
    second, `is_done` whether an earlier run settled an item (for `--resume`), `keep` whether a
    row is this run's at all (a shard's share of the job).
    """
    plan = Plan()
    planner = Planner(limit=limit, run_id="plan")
    repeated: list[tuple[str, str, int]] = []  # item key, job, line of the first repeats
    for job in jobs:
        for row in read_job(job.path, job_name=job.name, encoding=job.encoding):
            if keep is not None and not keep(row):
                continue
            settled = is_done is not None and is_done(row.item_key)
            if isinstance(row, InvalidRow):
                plan.invalid_count += 1
                plan.invalid_settled += settled
                if len(plan.invalid) < _MAX_INVALID_KEPT:
                    plan.invalid.append(row)
            elif planner.is_duplicate(row):
                plan.duplicates += 1
                if not settled:  # the run writes a row for it; a settled one it only counts
                    _lane_plan(plan, row, rate).duplicates += 1
                if len(repeated) < _MAX_REPEATS_KEPT:
                    repeated.append((row.item_key, row.job, row.line))
            elif settled:
                plan.already_done += 1
            else:
                _lane_plan(plan, row, rate).items[row.op] += 1
                for call in planner.add(row):
                    _count_call(plan, call.lane, call.op, call.items)
    for call in planner.flush():
        _count_call(plan, call.lane, call.op, call.items)
    planner.close()
    plan.repeats = _name_repeats(jobs, repeated)
    return plan


def _name_repeats(jobs: Sequence[JobRef], repeated: list[tuple[str, str, int]]) -> list[Repeat]:
    """The first repeats, each with the row it repeats: a second read, which stops as soon as
    every repeated item was met (each is met before its repeats)."""
    keys = {key for key, _, _ in repeated}
    first: dict[str, tuple[str, int]] = {}
    for job in jobs:
        if len(first) == len(keys):
            break
        for row in read_job(job.path, job_name=job.name, encoding=job.encoding):
            if isinstance(row, Item) and row.item_key in keys:
                first.setdefault(row.item_key, (row.job, row.line))
                if len(first) == len(keys):
                    break
    return [
        Repeat(job=job, line=line, first_job=first[key][0], first_line=first[key][1])
        for key, job, line in repeated
    ]


def _lane_plan(plan: Plan, item: Item, rate: Callable[[LaneKey], float]) -> LanePlan:
    lane = plan.lanes.get(item.lane)
    if lane is None:
        lane = plan.lanes[item.lane] = LanePlan(rate=rate(item.lane))
    return lane


def _count_call(plan: Plan, key: LaneKey, op: Op, items: tuple[Item, ...]) -> None:
    lane = plan.lanes[key]
    lane.calls[op] += 1
    if key.vendor is Vendor.EASEMOB and op is Op.DELETE_CONVERSATION:
        lane.per_key_calls[str(items[0].params["username"])] += 1
