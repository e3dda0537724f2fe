"""The latest outcome of every item in one or more results files, with the counts a report
shows and the manifests of the runs that wrote them.

Items, invalid rows and duplicates are counted apart, as the plan and the run's summary count
them.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batchrecall.errors import ErrorCode, UsageError
from batchrecall.keystore import KeyStore
from batchrecall.models import Status
from batchrecall.results.manifest import manifest_path, read_manifest
from batchrecall.results.store import is_done, read_rows

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
_SOURCE = "_source"
"""Which results file (its position among the arguments) an item's latest row came from."""


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

    def _add(self, row: dict[str, Any], source: Path, order: int = 0) -> None:
        """Take one row of the `order`-th results file (in argument order)."""
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
                marked = {**row, _ONLY_DUPLICATE: True, _SOURCE: order}
                self.rows.put(key, orjson.dumps(marked).decode())
            return
        if order and not self._supersedes(key, row, order):
            return
        self.rows.put(key, orjson.dumps({**row, _SOURCE: order}).decode())

    def _supersedes(self, key: str, row: dict[str, Any], order: int) -> bool:
        """Whether `row` of the `order`-th file is later than the item's row so far. In one file
        the later line is; across files (shards, a run resumed elsewhere, files named in any
        order) the later `finished_at` is, and on a tie the file named later."""
        text = self.rows.get(key)
        if text is None:
            return True
        known = orjson.loads(text)
        if known.get(_ONLY_DUPLICATE) or known.get(_SOURCE) == order:
            return True
        new_at, known_at = str(row.get("finished_at") or ""), str(known.get("finished_at") or "")
        return not (new_at and known_at) or new_at >= known_at

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
    """The view of one or more results files: an item's latest row is the later one in its
    file, and across files the one finished last (on a tie, in the file named later)."""
    view = ResultsView(sources=list(paths))
    for order, path in enumerate(paths):
        check_results_file(path)
        rows, torn = read_rows(path)
        for row in rows:
            view._add(row, path, order)
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
