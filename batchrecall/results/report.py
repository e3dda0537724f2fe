"""`batchrecall report`: the latest outcome of every item, what is left, every failure, and an
HTML report.

Items, invalid rows and duplicates are counted apart, as the plan and the run's summary count
them. Exit code (SPEC §6): 0 nothing left to do, 1 items left to do, 2 unreadable input.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from batchrecall.errors import ErrorCode, JobFileError, UsageError
from batchrecall.keystore import KeyStore
from batchrecall.models import RESULT_COLUMNS, InvalidRow, Item, Op, Status, Vendor
from batchrecall.results.manifest import manifest_path, read_manifest
from batchrecall.results.store import is_done, read_rows
from batchrecall.results.summary import ExitCode, count_phrase

JobReader = Callable[[Path, str], Iterable[Item | InvalidRow]]
"""Reads a job file's rows (path, name as the results give it): the intake's reader."""

STATUS_ORDER = (
    Status.OK,
    Status.NOT_FOUND,
    Status.FAILED,
    Status.UNKNOWN,
    Status.SKIPPED,
    Status.INVALID,
)
_SENT = frozenset({Status.OK, Status.NOT_FOUND, Status.FAILED, Status.UNKNOWN})
_MAX_REFS = 1_000
_OTHER_REFS = "(other refs)"
_ONLY_DUPLICATE = "_only_duplicate"
"""Marks an item whose only row is a duplicate's: its own outcome never came (a killed run)."""
# Every job field, in the order a CSV job file of what is left lists them.
_JOB_COLUMNS = (
    "vendor", "op", "app", "ref", "msg_id", "to", "chat_type", "from", "force", "sync_device",
    "username", "channel", "type", "delete_roam", "userAId", "userBId", "groupId", "messages",
    "recaller", "conversation_id", "message_server_id", "description", "ignore_revoke_time",
    "clear_message",
)  # fmt: skip


@dataclass
class ResultsView:
    """The latest row of each item, invalid row and duplicate (kept on disk past a size), the
    counts a report shows, and the manifests of the runs."""

    sources: list[Path] = field(default_factory=list)
    rows: KeyStore = field(default_factory=KeyStore)
    """item_key -> the item's latest row (JSON)."""
    invalid: KeyStore = field(default_factory=KeyStore)
    """job and line -> the invalid row (JSON)."""
    duplicates: KeyStore = field(default_factory=KeyStore)
    """job, line and index -> the duplicate's row (JSON)."""
    job_homes: dict[str, Path] = field(default_factory=dict)
    """Each job the results name -> the results file that named it first."""
    torn: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lanes: dict[str, Counter[str]] = field(default_factory=dict)
    ops: dict[str, Counter[str]] = field(default_factory=dict)
    refs: dict[str, Counter[str]] = field(default_factory=dict)
    timeline: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(finished_at to the second, status) -> items the vendor answered then, every run."""
    left: int = 0
    manifests: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return len(self.rows)

    @property
    def invalid_rows(self) -> int:
        return len(self.invalid)

    @property
    def duplicate_rows(self) -> int:
        return len(self.duplicates)

    def latest(self) -> Iterator[dict[str, Any]]:
        """Every item's latest row."""
        for _, text in self.rows.items():
            row: dict[str, Any] = orjson.loads(text)
            yield row

    def invalid_rows_read(self) -> Iterator[dict[str, Any]]:
        for _, text in self.invalid.items():
            row: dict[str, Any] = orjson.loads(text)
            yield row

    def left_to_do(self) -> Iterator[dict[str, Any]]:
        return (row for row in self.latest() if not is_settled(row))

    def failures(self) -> Iterator[dict[str, Any]]:
        """Every item not ok or not_found, then every invalid row: what was not taken back."""
        for row in self.latest():
            if row["status"] not in (Status.OK, Status.NOT_FOUND):
                yield row
        yield from self.invalid_rows_read()

    def runs(self) -> Iterator[dict[str, Any]]:
        for _, manifest in self.manifests:
            yield from manifest["runs"]

    def close(self) -> None:
        for store in (self.rows, self.invalid, self.duplicates):
            store.close()

    def _add(self, row: dict[str, Any], source: Path) -> None:
        job = str(row.get("job") or "")
        self.job_homes.setdefault(job, source)
        status = str(row["status"])
        if status in _SENT and int(row.get("attempts") or 0) > 0:
            second = str(row.get("finished_at") or "")[:19]
            if second:
                self.timeline[(second, status)] += 1
        if status == Status.INVALID:
            self.invalid.put(f"{job}\t{row.get('line')}", orjson.dumps(row).decode())
            return
        key = str(row["item_key"])
        if row.get("error") == ErrorCode.DUPLICATE:
            where = f"{job}\t{row.get('line')}\t{row.get('index')}"
            self.duplicates.put(where, orjson.dumps(row).decode())
            if self.rows.get(key) is None:
                self.rows.put(key, orjson.dumps({**row, _ONLY_DUPLICATE: True}).decode())
            return
        self.rows.put(key, orjson.dumps(row).decode())

    def _count(self) -> None:
        for row in self.latest():
            status = str(row["status"])
            self.statuses[status] += 1
            if row.get("error"):
                self.errors[str(row["error"])] += 1
            lane = f"{row.get('vendor') or '?'}.{row.get('app') or '?'}"
            self.lanes.setdefault(lane, Counter())[status] += 1
            op = f"{row.get('vendor') or '?'} {row.get('op') or '?'}"
            self.ops.setdefault(op, Counter())[status] += 1
            ref = str(row.get("ref") or "(no ref)")
            if ref not in self.refs and len(self.refs) >= _MAX_REFS:
                ref = _OTHER_REFS
            self.refs.setdefault(ref, Counter())[status] += 1
            self.left += not is_settled(row)


def is_settled(row: dict[str, Any]) -> bool:
    """Nothing is left to do for this item (SPEC §5 resume rule)."""
    if row.get(_ONLY_DUPLICATE):
        return False
    return is_done(str(row["status"]), str(row.get("error") or ""))


def check_results_file(path: Path) -> None:
    """UsageError unless `path` holds result rows (or none yet): a job file, a manifest or any
    other file is refused, saying what it looks like."""
    if not path.is_file():
        raise UsageError(f"{path}: no such results file")
    try:
        with path.open("rb") as handle:
            first = next((line for line in handle if line.strip()), b"")
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    first = first.removeprefix(b"\xef\xbb\xbf").strip()
    if not first:
        return
    if first.startswith(b"{"):
        try:
            fields = orjson.loads(first)
        except orjson.JSONDecodeError:
            if first.startswith(b'{"job":'):
                return  # a run cut off while writing its first row
            fields = None
    else:
        try:
            fields = dict.fromkeys(next(csv.reader([first.decode("utf-8", "replace")])))
        except csv.Error:
            fields = None
    if isinstance(fields, dict):
        if "item_key" in fields and "status" in fields:
            return
        if "vendor" in fields or "op" in fields:
            raise UsageError(
                f"{path}: this looks like a job file, not a results file; report reads what "
                "`run` wrote (<job>.results.jsonl by default)"
            )
    raise UsageError(f"{path}: not a batchrecall results file")


def load_view(paths: Sequence[Path]) -> ResultsView:
    """The view of one or more results files, read in order (a later row supersedes)."""
    view = ResultsView(sources=list(paths))
    for path in paths:
        check_results_file(path)
        rows, torn = read_rows(path)
        for row in rows:
            view._add(row, path)
        view.torn += len(torn)
        _load_manifest(view, path)
    view._count()
    return view


def _load_manifest(view: ResultsView, results: Path) -> None:
    path = manifest_path(results)
    if not path.exists():
        return
    try:
        view.manifests.append((path, read_manifest(path)))
    except (OSError, ValueError) as exc:
        view.manifest_problems.append(f"{path}: cannot be read ({exc})")


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
        print_report(view, stream)
        if failed_jobs is not None:
            written, missing = write_failed_jobs(view, failed_jobs, read_job)
            print(f"Wrote {written:,} rows still to do to {failed_jobs}", file=stream)
            if missing:
                print(
                    f"warning: {missing:,} item(s) left to do are no longer in their job files "
                    "and could not be written",
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
    return ExitCode.INCOMPLETE if view.left else ExitCode.OK


def print_report(view: ResultsView, stream: TextIO) -> None:
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
        codes = ", ".join(f"{code} {n:,}" for code, n in view.errors.most_common())
        print(f"  errors: {codes}", file=stream)
    print(f"  left to do: {view.left:,}", file=stream)


def status_counts(counts: Counter[str]) -> str:
    return ", ".join(f"{s} {counts[s]:,}" for s in STATUS_ORDER if counts.get(s)) or "nothing"


def run_line(run: dict[str, Any]) -> str:
    """One run of a manifest in a line: id, when, how long, who, exit code, what."""
    who = run.get("operator") or {}
    finished = run.get("finished_at")
    end = f"to {finished}" if finished else "(no end recorded: the run was killed)"
    duration = run.get("duration_s")
    took = f", {duration:,.1f} s" if isinstance(duration, int | float) else ""
    code = run.get("exit_code")
    exit_text = f", exit {code}" if code is not None else ""
    jobs = ", ".join(str(j.get("name")) for j in run.get("jobs") or [])
    resumed = " (resume)" if run.get("resume") else ""
    return (
        f"run {run.get('run_id')}{resumed}: {run.get('started_at')} {end}{took} by "
        f"{who.get('user', '?')}@{who.get('host', '?')}{exit_text}; jobs {jobs}"
    )


# -- what is left, and every failure -------------------------------------------------------------


def write_failed_jobs(view: ResultsView, target: Path, read_job: JobReader) -> tuple[int, int]:
    """A job file (JSONL, or CSV by its name) with one row for every item left to do.

    Rows are rebuilt from the job files the results name, found as named (from the working
    directory), beside the results file, or where the manifest recorded them. Returns the rows
    written and the items left to do that no job file holds any more.
    """
    left = KeyStore()
    jobs: set[str] = set()
    for row in view.left_to_do():
        left.add_new(str(row["item_key"]))
        jobs.add(str(row["job"]))
    written = 0
    try:
        with target.open("w", encoding="utf-8", newline="") as handle:
            sink = _RowSink(handle, _JOB_COLUMNS, csv_format=_is_csv(target))
            for job in sorted(jobs):
                for item in _items_of(job, view, read_job):
                    if left.get(item.item_key) == "":
                        left.put(item.item_key, "written")
                        sink.write(job_row(item))
                        written += 1
        return written, len(left) - written
    finally:
        left.close()


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
    return row
