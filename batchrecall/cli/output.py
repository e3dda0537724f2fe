"""What the commands print: the plan before a run and the summary after it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from batchrecall.intake.plan import Plan
from batchrecall.models import Status
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
    if plan.already_done:
        _say(
            stream,
            f"  already done in the results file: {plural(plan.already_done, 'item')} "
            "(not sent again)",
        )
    _say(
        stream,
        f"  total: {count_phrase(plan.items, plan.invalid_count, plan.duplicates)} "
        f"in {plural(plan.calls, 'call')}, "
        f"estimated {format_duration(plan.estimated_s())} at the lanes' rates",
    )
    if out is not None:
        _say(stream, f"  results: {out}")


def _counts(counter: Mapping[str, int], *, skip: str = "") -> str:
    parts = [f"{s} {counter[s]:,}" for s in _STATUS_ORDER if counter.get(s) and s != skip]
    return ", ".join(parts) or "nothing"


def print_summary(summary: Summary, *, out: Path, stream: TextIO) -> None:
    duration = summary.duration_s
    sent = summary.items_this_run
    rate = sent / duration if duration > 0 else 0.0
    _say(stream)
    _say(
        stream,
        f"Summary: {count_phrase(summary.items, summary.invalid_rows, summary.all_duplicates)}"
        f", {format_duration(duration)} ({rate:.1f} items/s)",
    )
    if summary.kept_items:
        _say(
            stream,
            f"  settled by an earlier run: {_counts(summary.kept_statuses, skip=Status.INVALID)}",
        )
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
    if summary.stop_reason:
        _say(stream, f"  run stopped early: {summary.stop_reason}")
    _say(stream, f"Results: {out}")
