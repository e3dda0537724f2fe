"""The plan shown before a run: items and calls per lane, duplicates, invalid rows, duration."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from batchrecall import catalog
from batchrecall.intake.partition import Partition
from batchrecall.intake.planner import Planner
from batchrecall.intake.reader import read_job
from batchrecall.keystore import KeyStore
from batchrecall.models import (
    USER_PACING_PERIOD_S,
    USER_PACING_RATE,
    InvalidRow,
    Item,
    JobRef,
    LaneKey,
    Op,
    Status,
)


@dataclass
class LanePlan:
    items: Counter[Op] = field(default_factory=Counter)
    calls: Counter[Op] = field(default_factory=Counter)
    per_key_calls: Counter[str] = field(default_factory=Counter)
    rate: float = 0.0
    duplicates: int = 0
    """Repeats of this lane's items that get a `skipped` / `duplicate` row in this run."""
    past_window: int = 0
    """Items to send whose `sent_at` is past their recall window: the vendor will refuse them."""

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
    settled: Callable[[str], str | None] | None = None,
    keep: Callable[[Item | InvalidRow], bool] | None = None,
    partition: Partition | None = None,
    observe: Callable[[Item], None] | None = None,
    past_window: Callable[[Item], bool] | None = None,
) -> Plan:
    """Read the jobs once and plan them as the run would, without sending anything.

    `limit` is the items a call of this item's lane and op carries, `rate` a lane's requests per
    second, `settled` the status an earlier run settled an item with (`--resume`; None if it
    did not), `keep` whether a row is this run's at all (a shard's share of the job). With a
    `partition`, the pass also leaves there what the run needs instead of reading the job
    again; `observe` sees every valid item of the files, whatever the run does with it;
    `past_window` says whether an item's `sent_at` is past its recall window.
    """
    plan = Plan()
    planner = Planner(limit=limit, run_id="plan")
    repeated: list[Repeat] = []
    seen = KeyStore()
    try:
        for number, job in enumerate(jobs):
            for row in read_job(job.path, job_name=job.name, encoding=job.encoding):
                if observe is not None and isinstance(row, Item):
                    observe(row)
                if keep is not None and not keep(row):
                    continue
                earlier = settled(row.item_key) if settled is not None else None
                done = earlier is not None
                if isinstance(row, InvalidRow):
                    plan.invalid_count += 1
                    plan.invalid_settled += done
                    if len(plan.invalid) < _MAX_INVALID_KEPT:
                        plan.invalid.append(row)
                    if partition is not None:
                        if earlier is not None:
                            partition.kept(earlier, repeat=False)
                        else:
                            partition.add_invalid(row)
                    continue
                # The value names the item's first row: a repeat says which row it repeats.
                if not seen.add_new(row.item_key, f"{number}:{row.line}"):
                    plan.duplicates += 1
                    if not done:  # the run writes a row for it; a settled one it only counts
                        _lane_plan(plan, row, rate).duplicates += 1
                    if len(repeated) < _MAX_REPEATS_KEPT:
                        repeated.append(_repeat(row, seen.get(row.item_key), jobs))
                    if partition is not None:
                        if done:
                            partition.kept(Status.SKIPPED, repeat=True)
                        else:
                            partition.add_repeat(row)
                elif earlier is not None:
                    plan.already_done += 1
                    if partition is not None:
                        partition.kept(earlier, repeat=False)
                else:
                    lane_plan = _lane_plan(plan, row, rate)
                    lane_plan.items[row.op] += 1
                    if past_window is not None and row.sent_at is not None and past_window(row):
                        lane_plan.past_window += 1
                    for call in planner.add(row):
                        _count_call(plan, call.lane, call.op, call.items)
                    if partition is not None:
                        partition.add_item(row)
        for call in planner.flush():
            _count_call(plan, call.lane, call.op, call.items)
    finally:
        planner.close()
        seen.close()
        if partition is not None:
            partition.finish()
    plan.repeats = repeated
    return plan


def _repeat(item: Item, first: str | None, jobs: Sequence[JobRef]) -> Repeat:
    number, _, line = (first or "").partition(":")
    first_job = jobs[int(number)].name if number else ""
    return Repeat(job=item.job, line=item.line, first_job=first_job, first_line=int(line or 0))


def _lane_plan(plan: Plan, item: Item, rate: Callable[[LaneKey], float]) -> LanePlan:
    lane = plan.lanes.get(item.lane)
    if lane is None:
        lane = plan.lanes[item.lane] = LanePlan(rate=rate(item.lane))
    return lane


def _count_call(plan: Plan, key: LaneKey, op: Op, items: tuple[Item, ...]) -> None:
    lane = plan.lanes[key]
    lane.calls[op] += 1
    paced_by = catalog.get(key.vendor).op(op).pacing_field
    if paced_by is not None:
        lane.per_key_calls[str(items[0].params[paced_by])] += 1
