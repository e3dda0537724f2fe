"""What the commands print: the plan before a run and the summary after it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from batchrecall import catalog
from batchrecall.intake.plan import Plan
from batchrecall.models import Status, Vendor
from batchrecall.redact import redact
from batchrecall.results.summary import Summary, count_phrase

_STATUS_ORDER = (
    Status.OK,
    Status.NOT_FOUND,
    Status.FAILED,
    Status.INVALID,
    Status.SKIPPED,
    Status.UNKNOWN,
)


def _say(stream: TextIO, text: str = "") -> None:
    print(redact(text), file=stream)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def plan_facts(plan: Plan) -> dict[str, Any]:
    """The plan's figures, for the manifest."""
    return {
        "items": plan.items,
        "calls": plan.calls,
        "invalid_rows": plan.invalid_count,
        "duplicates": plan.duplicates,
        "already_done": plan.already_done,
        "estimated_s": round(plan.estimated_s(), 3),
    }


def print_plan(plan: Plan, *, out: Path | None, stream: TextIO, emulated: bool) -> None:
    _say(stream, "Plan" + (" (against the built-in emulators)" if emulated else ""))
    for key, lane in sorted(plan.lanes.items()):
        _say(stream, f"  lane {key}  at {lane.rate:g} requests/s")
        for op, count in sorted(lane.items.items()):
            calls = lane.calls[op]
            _say(stream, f"    {op:<20} {plural(count, 'item')} in {plural(calls, 'call')}")
        if lane.past_window:
            _say(stream, _past_window(key.vendor, lane.past_window))
    if plan.invalid_count:
        _say(stream, f"  invalid rows: {plan.invalid_count:,} (written as 'invalid', never sent)")
        for row in plan.invalid[:10]:
            _say(stream, f"    {row.job}:{row.line}: {row.problem}")
        if plan.invalid_count > 10:
            _say(stream, f"    ... and {plan.invalid_count - 10:,} more")
    if plan.duplicates:
        _say(
            stream,
            f"  duplicates: {plan.duplicates:,} (each item is sent once; a repeat is written as "
            "'skipped' / 'duplicate')",
        )
        for repeat in plan.repeats:
            same_job = repeat.first_job == repeat.job
            first = (
                f"line {repeat.first_line}"
                if same_job
                else f"{repeat.first_job}:{repeat.first_line}"
            )
            _say(stream, f"    {repeat.job}:{repeat.line} repeats {first}")
        if plan.duplicates > len(plan.repeats):
            _say(stream, f"    ... and {plan.duplicates - len(plan.repeats):,} more")
    counted = count_phrase(plan.items + plan.already_done, plan.invalid_count, plan.duplicates)
    sending = f"in {plural(plan.calls, 'call')}"
    if plan.already_done:
        counted += f"; {plan.already_done:,} already done in the results file,"
        sending = f"{plan.items:,} to send {sending}"
    estimate = f"estimated {format_duration(plan.estimated_s())} at the lanes' rates"
    _say(stream, f"  total: {counted} {sending}, {estimate}")
    if out is not None:
        _say(stream, f"  results: {out}")


def _past_window(vendor: Vendor, count: int) -> str:
    """What the operator is told of items the rows' `sent_at` shows to be too old to recall."""
    fix = "raise the app's recall window in the vendor's console and recall_window_s in the config"
    spec = catalog.find(vendor)
    if spec is not None and spec.window_hint:
        fix += f", {spec.window_hint}"
    return (
        f"    warning: {plural(count, 'item')} sent longer ago than the lane's recall window "
        f"(their sent_at): they will fail as recall-window-exceeded; {fix}"
    )


def _counts(counter: Mapping[str, int], *, skip: str = "") -> str:
    parts = [f"{s} {counter[s]:,}" for s in _STATUS_ORDER if counter.get(s) and s != skip]
    return ", ".join(parts) or "nothing"


@dataclass(frozen=True, slots=True)
class RunTotals:
    """A run's counts over the whole job, as the plan and the report count: what this run wrote,
    and what the plan found an earlier run had settled (which gets no new row)."""

    items: int
    invalid_rows: int
    duplicates: int
    settled_before: int


def run_totals(plan: Plan, summary: Summary) -> RunTotals:
    return RunTotals(
        items=plan.already_done + summary.items_this_run + summary.left_unread,
        invalid_rows=plan.invalid_settled + summary.statuses[Status.INVALID],
        duplicates=plan.settled_repeats + summary.duplicates,
        settled_before=plan.already_done,
    )


def print_summary(summary: Summary, totals: RunTotals, *, out: Path, stream: TextIO) -> None:
    duration = summary.duration_s
    rate = summary.items_this_run / duration if duration > 0 else 0.0
    _say(stream)
    _say(
        stream,
        f"Summary: {count_phrase(totals.items, totals.invalid_rows, totals.duplicates)}, "
        f"{format_duration(duration)} ({rate:.1f} items/s)",
    )
    if totals.settled_before:
        _say(stream, f"  settled by an earlier run: {plural(totals.settled_before, 'item')}")
        _say(stream, f"  this run: {_counts(summary.item_statuses)}")
    else:
        _say(stream, f"  status: {_counts(summary.item_statuses)}")
    for lane, counts in sorted(summary.lanes.items()):
        throttles = summary.throttles.get(lane, 0)
        extra = f"  (throttled {plural(throttles, 'time')})" if throttles else ""
        _say(stream, f"  {lane}: {_counts(counts)}{extra}")
    if summary.item_errors:
        codes = ", ".join(f"{code} {n:,}" for code, n in summary.item_errors.most_common())
        _say(stream, f"  errors: {codes}")
    for lane, code in sorted(summary.stopped_lanes.items()):
        _say(stream, f"  lane {lane} STOPPED: {code}")
    if summary.left_unread:
        _say(
            stream,
            f"  left to do: {plural(summary.left_unread, 'item')} not read before the stop "
            "(no row written; --resume sends them)",
        )
    if summary.stop_reason:
        _say(stream, f"  run stopped early: {summary.stop_reason}")
    _say(stream, f"Results: {out}")
