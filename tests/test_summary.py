"""Exit codes (SPEC §6) from a run's outcome counts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from batchrecall.errors import CallError, ErrorCode
from batchrecall.models import ResultRow, Status
from batchrecall.results.summary import ExitCode, Summary


def row(status: Status, error: str = "", *, vendor: str = "easemob") -> ResultRow:
    return ResultRow(
        job="job.jsonl",
        line=2,
        index=0,
        ref="",
        vendor=vendor,
        app="default",
        op="recall",
        target="m1",
        item_key="easemob:default:recall:m1",
        status=status,
        error=error,
        message="",
        http_status=None,
        vendor_code="",
        attempts=0 if status in (Status.SKIPPED, Status.INVALID) else 1,
        call_id="",
        finished_at="2024-05-01T10:00:00.000Z",
    )


@dataclass
class _Stats:
    throttles: int = 0


@dataclass
class _Lane:
    fatal: CallError | None = None
    stats: _Stats = field(default_factory=_Stats)


def summary_of(*rows: ResultRow) -> Summary:
    summary = Summary()
    for r in rows:
        summary.add(r)
    return summary


def test_exit_codes_have_the_documented_values() -> None:
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 4, 130]


def test_empty_run_is_ok() -> None:
    assert Summary().exit_code() is ExitCode.OK


@pytest.mark.parametrize(
    "rows",
    [
        [row(Status.OK)],
        [row(Status.NOT_FOUND, "not-found")],
        [row(Status.OK), row(Status.SKIPPED, "duplicate"), row(Status.NOT_FOUND, "not-found")],
        [row(Status.SKIPPED, "duplicate")],
    ],
)
def test_ok_when_every_item_is_ok_not_found_or_duplicate(rows: list[ResultRow]) -> None:
    assert summary_of(*rows).exit_code() is ExitCode.OK


@pytest.mark.parametrize(
    "bad",
    [
        row(Status.FAILED, "recall-window-exceeded"),
        row(Status.FAILED, "timeout"),
        row(Status.INVALID, "invalid-row"),
        row(Status.UNKNOWN, "timeout"),
        row(Status.SKIPPED, "lane-stopped"),
        row(Status.SKIPPED, "halted"),
        row(Status.SKIPPED, "interrupted"),
    ],
    ids=lambda r: f"{r.status}-{r.error}",
)
def test_incomplete_when_any_item_is_failed_invalid_unknown_or_skipped(bad: ResultRow) -> None:
    summary = summary_of(row(Status.OK), row(Status.SKIPPED, "duplicate"), bad, row(Status.OK))
    assert summary.exit_code() is ExitCode.INCOMPLETE


def test_halted_run() -> None:
    summary = summary_of(row(Status.OK), row(Status.FAILED, "timeout"))
    summary.stop_reason = ErrorCode.HALTED
    assert summary.exit_code() is ExitCode.HALTED


def test_stopped_lane_is_exit_3_even_when_other_items_are_ok() -> None:
    summary = summary_of(row(Status.OK, vendor="goeasy"))
    fatal = CallError(ErrorCode.AUTH_FAILED, "bad credentials", http_status=401)
    summary.finish(10.0, {"easemob.default": _Lane(fatal=fatal), "goeasy.default": _Lane()})
    assert summary.stopped_lanes == {"easemob.default": "auth-failed"}
    assert summary.exit_code() is ExitCode.HALTED


def test_lanes_without_a_fatal_error_do_not_change_the_code() -> None:
    summary = summary_of(row(Status.OK))
    summary.finish(10.0, {"easemob.default": _Lane(stats=_Stats(throttles=3))})
    assert summary.stopped_lanes == {}
    assert summary.throttles == {"easemob.default": 3}
    assert summary.exit_code() is ExitCode.OK


def test_interrupted_run() -> None:
    summary = summary_of(row(Status.OK), row(Status.SKIPPED, "interrupted"))
    summary.stop_reason = ErrorCode.INTERRUPTED
    assert summary.exit_code() is ExitCode.INTERRUPTED


def test_items_kept_from_an_earlier_run_count() -> None:
    summary = summary_of(row(Status.OK))
    summary.kept("ok", "")
    summary.kept("skipped", "duplicate")
    assert summary.exit_code() is ExitCode.OK
    summary.kept("failed", "recall-window-exceeded")
    assert summary.exit_code() is ExitCode.INCOMPLETE


def test_resume_with_nothing_left_is_ok() -> None:
    summary = Summary()
    summary.kept("ok", "")
    summary.kept("not_found", "not-found")
    assert summary.exit_code() is ExitCode.OK


def test_counts_per_status_lane_and_error() -> None:
    summary = summary_of(
        row(Status.OK),
        row(Status.FAILED, "timeout", vendor="yunxin"),
        row(Status.INVALID, "invalid-row"),
        row(Status.SKIPPED, "duplicate"),
    )
    # Items, invalid rows and duplicates are counted apart, as the plan and the report do.
    assert (summary.items, summary.invalid_rows, summary.all_duplicates) == (2, 1, 1)
    assert summary.statuses == {"ok": 1, "failed": 1, "invalid": 1, "skipped": 1}
    assert summary.item_statuses == {"ok": 1, "failed": 1}
    assert summary.errors == {"timeout": 1, "invalid-row": 1, "duplicate": 1}
    assert summary.item_errors == {"timeout": 1}
    assert summary.lanes["easemob.default"] == {"ok": 1}
    assert summary.lane_duplicates == {"easemob.default": 1}
    assert summary.lanes["yunxin.default"] == {"failed": 1}
    assert summary.duplicates == 1


def test_a_repeat_of_a_kept_item_is_a_duplicate_not_another_item() -> None:
    summary = Summary()
    summary.kept("ok", "", "easemob:default:recall:m1")
    summary.kept("ok", "", "easemob:default:recall:m1")
    summary.kept("invalid", "invalid-row", "invalid:abc")
    summary.kept("invalid", "invalid-row", "invalid:abc")  # the same bad line twice: two rows
    assert (summary.items, summary.invalid_rows, summary.all_duplicates) == (1, 2, 1)
    assert summary.exit_code() is ExitCode.INCOMPLETE  # invalid rows


def test_skipped_items_other_than_duplicates_leave_work_to_do() -> None:
    summary = summary_of(row(Status.OK), row(Status.SKIPPED, "duplicate"))
    summary.kept("ok", "", "k1")
    summary.kept("ok", "", "k1")  # a repeat settled earlier
    assert summary.exit_code() is ExitCode.OK
    summary.add(row(Status.SKIPPED, "halted"))
    assert summary.exit_code() is ExitCode.INCOMPLETE


def test_duration() -> None:
    summary = Summary()
    summary.start(100.0)
    summary.finish(112.5, {})
    assert summary.duration_s == 12.5
