"""The plan shown before a run: items and calls per lane, duplicates, invalid rows, duration."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
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

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def estimated_s(self) -> float:
        by_rate = self.total_calls / self.rate if self.rate else 0.0
        busiest = max(self.per_key_calls.values(), default=0)
        by_key = (
            math.ceil(busiest / USER_PACING_RATE - 1) * USER_PACING_PERIOD_S
            if busiest > USER_PACING_RATE
            else 0.0
        )
        return max(by_rate, by_key)


@dataclass
class Plan:
    lanes: dict[LaneKey, LanePlan] = field(default_factory=dict)
    invalid: list[InvalidRow] = field(default_factory=list)
    invalid_count: int = 0
    duplicates: int = 0
    already_done: int = 0

    @property
    def items(self) -> int:
        return sum(sum(lane.items.values()) for lane in self.lanes.values())

    @property
    def calls(self) -> int:
        return sum(lane.total_calls for lane in self.lanes.values())

    def estimated_s(self) -> float:
        return max((lane.estimated_s() for lane in self.lanes.values()), default=0.0)


_MAX_INVALID_KEPT = 50


def build_plan(
    jobs: Iterable[JobRef],
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
    for job in jobs:
        for row in read_job(job.path, job_name=job.name):
            if keep is not None and not keep(row):
                continue
            if is_done is not None and is_done(row.item_key):
                plan.already_done += 1
            elif isinstance(row, InvalidRow):
                plan.invalid_count += 1
                if len(plan.invalid) < _MAX_INVALID_KEPT:
                    plan.invalid.append(row)
            elif planner.is_duplicate(row):
                plan.duplicates += 1
            else:
                _lane_plan(plan, row, rate).items[row.op] += 1
                for call in planner.add(row):
                    _count_call(plan, call.lane, call.op, call.items)
    for call in planner.flush():
        _count_call(plan, call.lane, call.op, call.items)
    planner.close()
    return plan


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
