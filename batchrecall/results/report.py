"""`batchrecall report`: the latest outcome of every item, what is left, and an HTML report."""

from __future__ import annotations

import csv
import html
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from batchrecall.errors import JobFileError, UsageError
from batchrecall.keystore import KeyStore
from batchrecall.models import InvalidRow, Item, Op, Status, Vendor
from batchrecall.results.store import is_done, read_rows, supersedes
from batchrecall.results.summary import ExitCode

JobReader = Callable[[Path, str], Iterable[Item | InvalidRow]]
"""Reads a job file's rows (path, name as the results give it): the intake's reader."""

_TABLE_ROWS = 500
# Every job field, in the order a CSV job file of what is left lists them.
_JOB_COLUMNS = (
    "vendor", "op", "app", "ref", "msg_id", "to", "chat_type", "from", "force", "sync_device",
    "username", "channel", "type", "delete_roam", "userAId", "userBId", "groupId", "messages",
    "recaller", "conversation_id", "message_server_id", "description", "ignore_revoke_time",
    "clear_message",
)  # fmt: skip


@dataclass
class ResultsView:
    """The latest row of each item (kept on disk past a size), and its counts."""

    rows: KeyStore = field(default_factory=KeyStore)
    torn: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lanes: dict[str, Counter[str]] = field(default_factory=dict)
    left: int = 0

    def latest(self) -> Iterator[dict[str, Any]]:
        for _, text in self.rows.items():
            row: dict[str, Any] = orjson.loads(text)
            yield row

    def left_to_do(self) -> Iterator[dict[str, Any]]:
        return (row for row in self.latest() if not _done(row))

    def _count(self) -> None:
        for row in self.latest():
            status = str(row["status"])
            self.statuses[status] += 1
            if row.get("error"):
                self.errors[str(row["error"])] += 1
            if status != Status.INVALID:
                lane = f"{row.get('vendor') or '?'}.{row.get('app') or '?'}"
                self.lanes.setdefault(lane, Counter())[status] += 1
            self.left += not _done(row)


def _done(row: dict[str, Any]) -> bool:
    return is_done(str(row["status"]), str(row.get("error") or ""))


def load_view(paths: Path | Sequence[Path]) -> ResultsView:
    """The results of one run, from one file or several (its shards): an item in more than one
    file takes its outcome from the last of them."""
    paths = [paths] if isinstance(paths, Path) else paths
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such results file")
    view = ResultsView()
    for path in paths:
        rows, torn = read_rows(path)
        for row in rows:
            key = str(row["item_key"])
            if supersedes(row, view.rows.get(key) is not None):
                view.rows.put(key, orjson.dumps(row).decode())
        view.torn += len(torn)
    view._count()
    return view


def run_report(
    results: Path | Sequence[Path],
    *,
    failed_jobs: Path | None,
    html: Path | None,
    read_job: JobReader,
) -> int:
    paths = [results] if isinstance(results, Path) else list(results)
    view = load_view(paths)
    out = sys.stdout
    left = _LeftToDo(view, paths[0].parent, read_job, strict=failed_jobs is not None)
    if failed_jobs is not None:
        with failed_jobs.open("w", encoding="utf-8", newline="") as handle:
            left.walk(_JobSink(handle, csv_format=failed_jobs.suffix.lower() == ".csv"))
    else:
        left.walk(None)
    named = ", ".join(str(path) for path in paths)
    print(f"{named}: {len(view.rows)} items (the latest row of each)", file=out)
    if view.torn:
        print(f"  ignored {view.torn} unreadable line(s)", file=out)
    for status, n in _by_count(view.statuses):
        print(f"  {status:<10} {n}", file=out)
    for lane, counts in sorted(view.lanes.items()):
        print(f"  {lane}: " + ", ".join(f"{s} {n}" for s, n in _by_count(counts)), file=out)
    if view.errors:
        print("  errors: " + ", ".join(f"{c} {n}" for c, n in _by_count(view.errors)), file=out)
    if left.unrecorded:
        print(f"  without a row: {left.unrecorded} item(s) of the job files", file=out)
    total_left = view.left + left.unrecorded
    print(f"  left to do: {total_left}", file=out)
    for job in left.unreadable:
        print(
            f"warning: cannot read {job}: items of it without a row are not counted",
            file=sys.stderr,
        )
    if failed_jobs is not None:
        print(f"Wrote {left.written} rows still to do to {failed_jobs}", file=out)
        if left.gone:
            print(
                f"warning: {left.gone} item(s) left to do are no longer in their job files "
                "and could not be written",
                file=sys.stderr,
            )
    if html is not None:
        html.write_text(render_html(named, view, total_left), encoding="utf-8")
        print(f"Wrote the HTML report to {html}", file=out)
    view.rows.close()
    return ExitCode.OK if not total_left and not view.statuses.get(Status.INVALID) else 1


def _by_count(counts: Counter[str]) -> list[tuple[str, int]]:
    """Most first, ties by name: the same results print the same, however files split them."""
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))


class _LeftToDo:
    """Walks the job files the results name for the items left to do (SPEC §5): those whose
    latest row is not settled, and those with no row at all (a run cut short before it wrote
    them). Each is counted, and written once to a sink when one is given."""

    def __init__(
        self, view: ResultsView, results_dir: Path, read_job: JobReader, *, strict: bool
    ) -> None:
        """`strict`: a job file holding items left to do must be readable (to write them)."""
        self._view = view
        self._results_dir = results_dir
        self._read_job = read_job
        self._strict = strict
        self.written = 0
        self.unrecorded = 0
        self.gone = 0
        self.unreadable: list[str] = []

    def walk(self, sink: _JobSink | None) -> None:
        left = KeyStore()
        jobs: dict[str, bool] = {}  # each job the results name: whether it holds a row left
        for row in self._view.latest():
            job = str(row.get("job") or "")
            pending = not _done(row) and row["status"] != Status.INVALID
            if job:
                jobs[job] = jobs.get(job, False) or pending
            if pending:
                left.add_new(str(row["item_key"]))
        seen = KeyStore()
        found_left = 0
        for job in sorted(jobs):
            items = self._items(job, needed=jobs[job])
            if items is None:
                continue
            for item in items:
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
        seen.close()
        left.close()

    def _items(self, job: str, *, needed: bool) -> Iterator[Item] | None:
        """The job's items; None when it cannot be read and no row left to do needs it."""
        try:
            return _items_of(job, self._results_dir, self._read_job)
        except UsageError:
            if self._strict and needed:
                raise
            self.unreadable.append(job)
            return None


def _items_of(job: str, results_dir: Path, read_job: JobReader) -> Iterator[Item]:
    path = Path(job)
    if not path.exists() and not path.is_absolute() and (results_dir / path).exists():
        path = results_dir / path
    try:
        rows = read_job(path, job)
    except JobFileError as exc:
        raise UsageError(f"cannot rebuild the rows of {job}: {exc}") from None
    return (row for row in rows if isinstance(row, Item))


class _JobSink:
    def __init__(self, handle: TextIO, *, csv_format: bool) -> None:
        self._handle = handle
        self._csv = csv.writer(handle, lineterminator="\n") if csv_format else None
        if self._csv is not None:
            self._csv.writerow(_JOB_COLUMNS)

    def write(self, row: dict[str, Any]) -> None:
        if self._csv is None:
            self._handle.write(orjson.dumps(row).decode() + "\n")
        else:
            self._csv.writerow([_cell(row.get(column)) for column in _JOB_COLUMNS])


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
    return row


def _bar_chart(title: str, counts: Counter[str]) -> str:
    total = max(counts.values(), default=1)
    bars = []
    for i, (label, n) in enumerate(_by_count(counts)):
        width = 360 * n / total
        y = 28 + i * 26
        bars.append(
            f'<text x="0" y="{y + 14}">{html.escape(label)}</text>'
            f'<rect x="170" y="{y}" width="{width:.1f}" height="18" class="bar"/>'
            f'<text x="{176 + width:.1f}" y="{y + 14}">{n}</text>'
        )
    height = 36 + 26 * len(counts)
    return (
        f'<h2>{html.escape(title)}</h2><svg width="600" height="{height}" role="img">'
        + "".join(bars)
        + "</svg>"
    )


def render_html(results: Path | str, view: ResultsView, left: int) -> str:
    charts = [_bar_chart("Items by status", view.statuses)]
    if view.errors:
        charts.append(_bar_chart("Errors", view.errors))
    for lane, counts in sorted(view.lanes.items()):
        charts.append(_bar_chart(f"Lane {lane}", counts))
    columns = ("job", "line", "vendor", "op", "target", "status", "error", "message")
    table: list[str] = []
    for row in view.left_to_do():
        if len(table) == _TABLE_ROWS:
            break
        cells = "".join(f"<td>{html.escape(str(row.get(c) or ''))}</td>" for c in columns)
        table.append(f"<tr>{cells}</tr>")
    header = "".join(f"<th>{c}</th>" for c in columns)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>batchrecall report</title>
<style>body{{font-family:sans-serif;margin:2em}} .bar{{fill:#4a7bd0}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 6px}}</style></head>
<body><h1>batchrecall report</h1><p>{html.escape(str(results))}: {len(view.rows)} items,
{left} left to do.</p>
{"".join(charts)}
<h2>Left to do (first {_TABLE_ROWS})</h2><table><tr>{header}</tr>{"".join(table)}</table>
</body></html>
"""
