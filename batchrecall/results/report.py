"""`batchrecall report`: the latest outcome of every item, what is left, every failure, and an
HTML report. Exit code (SPEC §6): 0 nothing left to do, 1 items left to do, 2 unreadable input.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson

from batchrecall.errors import JobFileError, UsageError
from batchrecall.keystore import KeyStore
from batchrecall.models import RESULT_COLUMNS, InvalidRow, Item, Op, Status, Vendor
from batchrecall.results.summary import ExitCode, count_phrase
from batchrecall.results.view import (
    STATUS_ORDER,
    ResultsView,
    is_settled,
    load_view,
    run_line,
    status_counts,
)

JobReader = Callable[[Path, str], Iterable[Item | InvalidRow]]
"""Reads a job file's rows (path, name as the results give it): the intake's reader."""

# Every job field, in the order a CSV job file of what is left lists them.
_JOB_COLUMNS = (
    "vendor", "op", "app", "ref", "msg_id", "to", "chat_type", "from", "force", "sync_device",
    "username", "channel", "type", "delete_roam", "userAId", "userBId", "groupId", "messages",
    "recaller", "conversation_id", "message_server_id", "description", "ignore_revoke_time",
    "check_team_member_valid", "clear_message",
    "fromUserId", "conversationType", "targetId", "messageUID", "sentTime", "busChannel",
    "isDelete", "isAdmin", "extra", "disablePush", "msgTimestamp",
    # Tencent Cloud IM
    "From_Account", "To_Account", "MsgKey", "GroupId", "MsgSeq", "Reason", "Operator_Account",
    "Peer_Account", "ToGroupid", "ClearRamble",
    "sent_at",
)  # fmt: skip


def run_report(
    results: Sequence[Path],
    *,
    failed_jobs: Path | None,
    html: Path | None,
    read_job: JobReader,
    all_failures: Path | None = None,
    out: TextIO | None = None,
) -> int:
    stream = sys.stdout if out is None else out
    view = load_view(results)
    try:
        left = LeftToDo(view, read_job, strict=failed_jobs is not None)
        if failed_jobs is not None:
            with failed_jobs.open("w", encoding="utf-8", newline="") as handle:
                left.walk(_RowSink(handle, _JOB_COLUMNS, csv_format=_is_csv(failed_jobs)))
        else:
            left.walk(None)
        print_report(view, stream, unrecorded=left.unrecorded)
        for job in left.unreadable:
            print(
                f"warning: cannot read {job}: items of it without a row are not counted",
                file=sys.stderr,
            )
        if failed_jobs is not None:
            print(f"Wrote {left.written:,} rows still to do to {failed_jobs}", file=stream)
            if left.gone:
                print(
                    f"warning: {left.gone:,} item(s) left to do are no longer in their job "
                    "files and could not be written",
                    file=sys.stderr,
                )
        if all_failures is not None:
            count = write_all_failures(view, all_failures)
            print(f"Wrote {count:,} items not taken back to {all_failures}", file=stream)
        if html is not None:
            from batchrecall.results.report_html import render_html

            html.write_text(render_html(view), encoding="utf-8")
            print(f"Wrote the HTML report to {html}", file=stream)
    finally:
        view.close()
    return ExitCode.INCOMPLETE if view.left + left.unrecorded else ExitCode.OK


def print_report(view: ResultsView, stream: TextIO, *, unrecorded: int = 0) -> None:
    names = ", ".join(str(p) for p in view.sources)
    phrase = count_phrase(view.items, view.invalid_rows, view.duplicate_rows)
    print(f"{names}: {phrase}", file=stream)
    for run in view.runs():
        print(f"  {run_line(run)}", file=stream)
    for problem in view.manifest_problems:
        print(f"  warning: {problem}", file=stream)
    if view.torn:
        print(f"  ignored {view.torn:,} unreadable line(s)", file=stream)
    for status in STATUS_ORDER:
        if status != Status.INVALID and view.statuses.get(status):
            print(f"  {status:<10} {view.statuses[status]:,}", file=stream)
    for lane, counts in sorted(view.lanes.items()):
        print(f"  {lane}: {status_counts(counts)}", file=stream)
    if view.errors:
        # Most first, ties by name: the same results print the same however files split them.
        ordered = sorted(view.errors.items(), key=lambda pair: (-pair[1], pair[0]))
        codes = ", ".join(f"{code} {n:,}" for code, n in ordered)
        print(f"  errors: {codes}", file=stream)
    if unrecorded:
        print(f"  without a row: {unrecorded:,} item(s) of the job files", file=stream)
    print(f"  left to do: {view.left + unrecorded:,}", file=stream)


# -- what is left, and every failure -------------------------------------------------------------


class LeftToDo:
    """Walks the job files the results name for the items left to do (SPEC §5): those whose
    latest row is not settled, and those with no row at all (a run cut short before it wrote
    them). Each is counted, and written once to a sink when one is given."""

    def __init__(self, view: ResultsView, read_job: JobReader, *, strict: bool) -> None:
        """`strict`: a job file holding items left to do must be readable (to write them)."""
        self._view = view
        self._read_job = read_job
        self._strict = strict
        self.written = 0
        self.unrecorded = 0
        self.gone = 0
        self.unreadable: list[str] = []

    def walk(self, sink: _RowSink | None) -> None:
        left = KeyStore()
        jobs: dict[str, bool] = {}  # each job the results name: whether it holds a row left
        for row in self._view.latest():
            job = str(row.get("job") or "")
            pending = not is_settled(row)
            if job:
                jobs[job] = jobs.get(job, False) or pending
            if pending:
                left.add_new(str(row["item_key"]))
        seen = KeyStore()
        found_left = 0
        try:
            for job in sorted(jobs):
                items = self._items(job, needed=jobs[job])
                for item in items or ():
                    key = item.item_key
                    if not seen.add_new(key):
                        continue  # a duplicate in the job: one row of it is enough
                    if left.get(key) is not None:
                        found_left += 1
                    elif self._view.rows.get(key) is None:
                        self.unrecorded += 1
                    else:
                        continue
                    if sink is not None:
                        sink.write(job_row(item))
                        self.written += 1
            self.gone = len(left) - found_left
        finally:
            seen.close()
            left.close()

    def _items(self, job: str, *, needed: bool) -> Iterator[Item] | None:
        """The job's items; None when it cannot be read and no row left to do needs it."""
        try:
            return _items_of(job, self._view, self._read_job)
        except UsageError:
            if self._strict and needed:
                raise
            self.unreadable.append(job)
            return None


def write_all_failures(view: ResultsView, target: Path) -> int:
    """The result row of every item not ok or not_found, and of every invalid row."""
    count = 0
    with target.open("w", encoding="utf-8", newline="") as handle:
        sink = _RowSink(handle, RESULT_COLUMNS, csv_format=_is_csv(target))
        for row in view.failures():
            sink.write({column: row.get(column) for column in RESULT_COLUMNS})
            count += 1
    return count


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def find_job(job: str, view: ResultsView) -> Path:
    """Where a job file the results name is now: as named, beside the results file, or where
    the manifest recorded it."""
    named = Path(job)
    candidates = [named]
    home = view.job_homes.get(job)
    if home is not None and not named.is_absolute():
        candidates += [home.parent / named, home.parent / named.name]
    for run in view.runs():
        candidates += [Path(str(j["path"])) for j in run.get("jobs") or [] if j.get("name") == job]
    return next((path for path in candidates if path.is_file()), named)


def _items_of(job: str, view: ResultsView, read_job: JobReader) -> Iterator[Item]:
    path = find_job(job, view)
    try:
        rows = read_job(path, job)
    except JobFileError as exc:
        raise UsageError(f"cannot rebuild the rows of {job}: {exc}") from None
    return (row for row in rows if isinstance(row, Item))


class _RowSink:
    def __init__(self, handle: TextIO, columns: Sequence[str], *, csv_format: bool) -> None:
        self._handle = handle
        self._columns = columns
        self._csv = csv.writer(handle, lineterminator="\n") if csv_format else None
        if self._csv is not None:
            self._csv.writerow(columns)

    def write(self, row: dict[str, Any]) -> None:
        if self._csv is None:
            self._handle.write(orjson.dumps(row).decode() + "\n")
        else:
            self._csv.writerow([_cell(row.get(column)) for column in self._columns])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def job_row(item: Item) -> dict[str, Any]:
    """The job-file row that asks for exactly this item."""
    row: dict[str, Any] = {"vendor": str(item.vendor), "op": str(item.op), "app": item.app}
    if item.ref:
        row["ref"] = item.ref
    params = dict(item.params)
    if item.vendor is Vendor.GOEASY:
        params["messages"] = [params.pop("timestamp")]
    if item.vendor is Vendor.YUNXIN and item.op is Op.DELETE_MESSAGE:
        params.pop("type", None)
    row.update(params)
    if item.sent_at is not None:
        row["sent_at"] = item.sent_at
    return row
