"""The results file: the single writer, the resume index, and reading rows back."""

from __future__ import annotations

import csv
import fcntl
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import anyio.to_thread
import orjson

from batchrecall.errors import LANE_STOPPING_CODES, TRANSIENT_CODES, ErrorCode, UsageError
from batchrecall.keystore import KeyStore
from batchrecall.models import RESULT_COLUMNS, ResultRow, Status

Format = Literal["jsonl", "csv"]
FSYNC_INTERVAL_S = 1.0

_CSV_HEADER = ",".join(RESULT_COLUMNS).encode()
_DONE_STATUSES = frozenset({Status.OK, Status.NOT_FOUND, Status.INVALID})
# Failures that leave an item to do: transient ones, and a lane stopped because its shared rate
# limiter was unreachable (nothing was sent).
_FAILED_LEFT_TO_DO = TRANSIENT_CODES | LANE_STOPPING_CODES | {ErrorCode.LIMITER_UNAVAILABLE}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_of(path: Path, requested: str | None = None) -> Format:
    if path.suffix.lower() == ".csv":
        return "csv"
    if requested == "csv" and path.suffix.lower() not in (".jsonl", ".ndjson"):
        return "csv"
    return "jsonl"


def default_results_path(job: Path, fmt: Format) -> Path:
    return job.with_name(f"{job.stem}.results.{fmt}")


def is_done(status: str, error: str) -> bool:
    """True when an item's latest row needs nothing more (SPEC §5 resume rule).

    A failure is settled when it is permanent; a transient one, or a lane-stopping one (bad
    credentials, a disabled service, a spent quota: the vendor did nothing), is left to do.
    """
    if status in _DONE_STATUSES:
        return True
    if status == Status.FAILED:
        return error not in _FAILED_LEFT_TO_DO
    return status == Status.SKIPPED and error == ErrorCode.DUPLICATE


class ResultsWriter:
    """Appends rows, flushes after every batch and fsyncs at least once a second and on close."""

    def __init__(
        self,
        path: Path,
        fmt: Format,
        *,
        append: bool,
        clock: Callable[[], float] = time.monotonic,
        fsync: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.fmt = fmt
        self._clock = clock
        new = not append or not path.exists() or path.stat().st_size == 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w" if not append else "a", encoding="utf-8", newline="")
        if append and not new:
            _terminate_torn_line(path, self._file, fmt)
        # CSV rows are formatted into this buffer, so that a batch is one write to the file.
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None and new:
            self._csv.writerow(RESULT_COLUMNS)
            self._file.write(self._take_buffer())
        self._fsync = fsync  # None: os.fsync, looked up at each call
        self._last_sync = clock()
        self._dirty = False
        self._synced_in_background = False
        """Once a task syncs in a worker thread, `write` never fsyncs on the caller's thread."""

    def write(self, rows: Iterable[ResultRow]) -> None:
        """Append a batch of rows: one write and one flush, whatever their number."""
        if self._csv is not None:
            self._csv.writerows(_csv_values(row) for row in rows)
            chunk = self._take_buffer()
        else:
            chunk = b"".join(
                orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows
            ).decode()
        if not chunk:
            return
        self._file.write(chunk)
        self._file.flush()
        self._dirty = True
        if not self._synced_in_background and self._clock() - self._last_sync >= FSYNC_INTERVAL_S:
            self.sync()

    def _take_buffer(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def sync(self) -> None:
        self._file.flush()
        self._sync_fd(self._file.fileno())
        self._last_sync = self._clock()
        self._dirty = False

    def _sync_fd(self, fd: int) -> None:
        (self._fsync or os.fsync)(fd)

    def sync_if_dirty(self) -> None:
        if self._dirty and not self._file.closed:
            self.sync()

    async def sync_in_thread(self) -> None:
        """fsync what was written so far in a worker thread: a slow disk never stalls the event
        loop (its pacing). Rows are flushed to the kernel as they are written, so the thread
        only syncs a duplicate of the file descriptor: writes go on meanwhile, and a `close`
        cannot take the descriptor from under it."""
        self._synced_in_background = True
        if not self._dirty or self._file.closed:
            return
        self._file.flush()
        fd = os.dup(self._file.fileno())
        self._dirty = False  # rows written from now on wait for the next sync
        try:
            await anyio.to_thread.run_sync(self._sync_fd, fd)
        except BaseException:
            self._dirty = True
            raise
        finally:
            os.close(fd)
        self._last_sync = self._clock()

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()


def _terminate_torn_line(path: Path, handle: io.TextIOBase, fmt: Format) -> None:
    """A killed run may leave half a row: end it so the next row starts on its own line.

    A CSV row may stop inside a quoted field (a message holding a comma, quote or newline): the
    quote is closed first, or every row appended after it would be read as part of that field.
    """
    with path.open("rb") as check:
        if fmt == "csv" and _ends_inside_quotes(check):
            handle.write('"\n')
            return
        check.seek(-1, os.SEEK_END)
        if check.read(1) != b"\n":
            handle.write("\n")


def _ends_inside_quotes(handle: BinaryIO) -> bool:
    """True when the quotes of a CSV file do not pair up: the csv module writes `"` only to open
    or close a quoted field or doubled inside one, so an odd count means a field left open."""
    count = 0
    while chunk := handle.read(1 << 20):
        count += chunk.count(b'"')
    return count % 2 == 1


def _csv_values(row: ResultRow) -> list[str]:
    values = (getattr(row, column) for column in RESULT_COLUMNS)
    return ["" if value is None else str(value) for value in values]


@dataclass
class ResumeIndex:
    """The latest status and error of every item in an existing results file."""

    store: KeyStore = field(default_factory=KeyStore)
    torn_lines: int = 0

    def record(self, item_key: str, status: str, error: str) -> None:
        self.store.put(item_key, f"{status}\t{error}")

    def outcome(self, item_key: str) -> tuple[str, str] | None:
        found = self.store.get(item_key)
        if found is None:
            return None
        status, _, error = found.partition("\t")
        return status, error

    def is_done(self, item_key: str) -> bool:
        found = self.outcome(item_key)
        return found is not None and is_done(*found)

    def as_dict(self) -> dict[str, tuple[str, str]]:
        """Every outcome at once (reads a large index into memory: for small files and tests)."""
        return {key: self.outcome(key) or ("", "") for key, _ in self.store.items()}

    def close(self) -> None:
        self.store.close()


def read_rows(path: Path) -> tuple[Iterator[dict[str, Any]], list[int]]:
    """Rows of a results file as dicts; the list collects line numbers of unreadable lines."""
    torn: list[int] = []
    if sniff_format(path) == "csv":
        return _read_csv_rows(path, torn), torn
    return _read_jsonl_rows(path, torn), torn


def sniff_format(path: Path) -> Format:
    """The format a results file was written in, by its first bytes (a CSV starts with its
    header), whatever its name says."""
    with path.open("rb") as handle:
        start = handle.read(len(_CSV_HEADER))
    if start.startswith(b"{") or not start:
        return format_of(path)
    return "csv" if start == _CSV_HEADER else format_of(path)


def _read_jsonl_rows(path: Path, torn: list[int]) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                torn.append(number)
                continue
            if isinstance(row, dict) and "item_key" in row and "status" in row:
                yield row
            else:
                torn.append(number)


def _read_csv_rows(path: Path, torn: list[int]) -> Iterator[dict[str, Any]]:
    # errors="replace": a torn last row may end inside a multi-byte character.
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "item_key" not in reader.fieldnames:
            raise UsageError(f"{path}: not a batchrecall results file (no item_key column)")
        for row in reader:
            if None in row or any(v is None for v in row.values()) or not row.get("status"):
                torn.append(reader.line_num)
                continue
            yield row


def supersedes(row: dict[str, Any], known: bool) -> bool:
    """Whether `row` becomes its item's outcome: the latest row does, except that a duplicate's
    row never hides the outcome of the item it repeats."""
    return not (
        known and row["status"] == Status.SKIPPED and row.get("error") == ErrorCode.DUPLICATE
    )


def load_resume_index(path: Path) -> ResumeIndex:
    """The outcome of every item in a results file.

    A duplicate's row is no outcome: it shares its item_key with the item it repeats, and a run
    killed before that item's call finished leaves the duplicate's row alone in the file.
    """
    rows, torn = read_rows(path)
    index = ResumeIndex()
    for row in rows:
        if row["status"] == Status.SKIPPED and row.get("error") == ErrorCode.DUPLICATE:
            continue
        index.record(str(row["item_key"]), str(row["status"]), str(row.get("error") or ""))
    index.torn_lines = len(torn)
    return index


class ResultsLock:
    """An exclusive lock on a results file for a run's whole life, so that two runs never write
    one file.

    `fcntl.flock` on `<results>.lock`, not the filelock library: the lock file holds the
    holder's process id, which the refusal names, and filelock does not expose it. The kernel
    drops the lock when the process dies, so a killed run never leaves the file locked.
    """

    def __init__(self, results: Path) -> None:
        self.results = results
        self.path = results.with_name(results.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise UsageError naming the file and the process holding it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise UsageError(
                    f"results file {self.results} is in use by another run (process {holder}); "
                    "wait for it to end or stop it first"
                ) from None
            # The previous holder may have removed the file between our open and our lock.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: a waiter re-checks the inode
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> ResultsLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
