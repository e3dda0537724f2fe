"""Streaming job-file reader (SPEC §2): JSONL or CSV, line by line, into Items and invalid rows.

Files are read in binary one physical line at a time, so memory stays flat on any file length.
UTF-8 with or without BOM, LF or CRLF; blank lines are skipped but still counted, so every row
keeps its physical line number (CSV: the header is line 1). Rows are checked by `jobs_schema`.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from batchrecall.errors import JobFileError
from batchrecall.intake.fields import parse_json
from batchrecall.intake.schema import invalid_row, items_from_row
from batchrecall.intake.typed import typed_items
from batchrecall.models import InvalidRow, Item

__all__ = ["read_job"]

MAX_LINE_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"
_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def read_job(path: Path, *, job_name: str | None = None) -> Iterator[Item | InvalidRow]:
    """Stream a job file's rows as Items (several for a row holding a list) and InvalidRows.

    `job_name` (default: `str(path)`) is what Items and InvalidRows name as their job. A file
    that cannot be read at all (missing, a directory, unreadable, an extension other than
    .jsonl/.ndjson/.csv, a CSV header with an empty or repeated column name or without `vendor`
    and `op` columns) raises JobFileError here, before anything is yielded; so does the iterator
    if reading fails part-way. Every other problem is an InvalidRow for its line (a line longer
    than MAX_LINE_BYTES too); a CSV cell must not span lines (quoted cells close on their own
    line), and a CSV row of empty cells is skipped like a blank line.
    """
    job = str(path) if job_name is None else job_name
    return _open(path).rows(job)


@dataclass(frozen=True, slots=True)
class _Line:
    """One non-blank physical line, without its line ending (or the file's BOM)."""

    number: int
    raw: bytes
    too_long: bool = False


@dataclass(frozen=True, slots=True)
class _JobSource:
    """An opened job file: its lines still to read and, for CSV, the header's column names."""

    lines: Generator[_Line, None, None]
    from_csv: bool
    header: tuple[str, ...] = ()
    first: _Line | None = None  # a JSONL row read by _open

    def rows(self, job: str) -> Iterator[Item | InvalidRow]:
        try:
            for line in itertools.chain([self.first] if self.first else [], self.lines):
                result = self._row(job, line)
                if isinstance(result, list):
                    yield from result
                elif result is not None:
                    yield result
        finally:
            self.lines.close()  # closes the file when the caller stops early

    def _row(self, job: str, line: _Line) -> list[Item] | InvalidRow | None:
        def invalid(problem: str) -> InvalidRow:
            return invalid_row(job=job, line=line.number, raw=line.raw, problem=problem)

        if line.too_long:
            return invalid(f"line is longer than {MAX_LINE_BYTES} bytes")
        try:
            text = line.raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return invalid(
                f"line is not valid UTF-8 (at byte {exc.start + 1}); save the file as UTF-8"
            )
        if not self.from_csv and (items := typed_items(text, job=job, line=line.number)):
            return items  # the common valid row; any other takes the careful path below
        fields = _csv_fields(text, self.header) if self.from_csv else _json_fields(text)
        if isinstance(fields, str):
            return invalid(fields)
        if not fields and self.from_csv:
            return None  # a row of empty cells, as spreadsheets leave at the end
        return items_from_row(
            fields, from_csv=self.from_csv, job=job, line=line.number, raw=line.raw
        )


def _open(path: Path) -> _JobSource:
    """Open a job file and, for CSV, read its header; JobFileError if it cannot be used."""
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise JobFileError(
            f"job file {path}: unknown format {path.suffix or '(no extension)'!r}; "
            "name it .jsonl, .ndjson or .csv"
        )
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise JobFileError(f"job file {path}: no such file") from None
    except IsADirectoryError:
        raise JobFileError(f"job file {path}: is a directory, not a file") from None
    except OSError as exc:
        raise JobFileError(f"job file {path}: cannot be opened ({exc.strerror or exc})") from None
    lines = _lines(file, path)
    try:
        # Reading a line enters `_lines`, which owns the file from then on: closing the
        # generator, or dropping it, closes the file even if no row is ever asked for.
        first = next(lines, None)
        if kind == "jsonl":
            return _JobSource(lines, from_csv=False, first=first)
        return _JobSource(lines, from_csv=True, header=_csv_header(path, first))
    except BaseException:
        lines.close()
        raise


def _lines(file: BinaryIO, path: Path) -> Generator[_Line, None, None]:
    """The file's non-blank lines; reads at most MAX_LINE_BYTES at a time, whatever the file."""
    with file:
        number = 0
        while chunk := _read_line(file, path, number, MAX_LINE_BYTES + 1):
            number += 1
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                _skip_rest_of_line(file, path, number)
                yield _Line(number, chunk[:MAX_LINE_BYTES], too_long=True)
                continue
            chunk = chunk.removesuffix(b"\n").removesuffix(b"\r")
            if number == 1:
                chunk = chunk.removeprefix(_BOM)
            if chunk.strip():
                yield _Line(number, chunk)


def _skip_rest_of_line(file: BinaryIO, path: Path, number: int) -> None:
    while True:
        rest = _read_line(file, path, number, MAX_LINE_BYTES)
        if not rest or rest.endswith(b"\n"):
            return


def _read_line(file: BinaryIO, path: Path, number: int, limit: int) -> bytes:
    try:
        return file.readline(limit)
    except OSError as exc:
        raise JobFileError(
            f"job file {path}: read failed after line {number} ({exc.strerror or exc})"
        ) from exc


def _json_fields(text: str) -> dict[str, Any] | str:
    """A JSONL line's object, or the problem with it."""
    try:
        value = parse_json(text)
    except orjson.JSONDecodeError as exc:
        return f"line is not valid JSON: {exc.msg} (column {exc.colno})"
    except (ValueError, RecursionError) as exc:
        return f"line cannot be read as JSON ({exc})"
    if not isinstance(value, dict):
        return f"line must be a JSON object {{...}} (got {_json_kind(value)})"
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _csv_cells(text: str) -> list[str]:
    # strict: an unterminated quote or junk after a closing quote is an error, not a guess.
    return next(csv.reader([text], strict=True))


def _csv_fields(text: str, header: tuple[str, ...]) -> dict[str, str] | str:
    """A CSV line's non-empty cells by column name, or the problem with the line."""
    try:
        cells = _csv_cells(text)
    except csv.Error as exc:
        return f"line is not valid CSV ({exc}); a quoted cell must close on the same line"
    if len(cells) != len(header):
        return f"row has {len(cells)} cells but the header has {len(header)} columns"
    return {name: cell for name, cell in zip(header, cells, strict=True) if cell != ""}


def _csv_header(path: Path, line: _Line | None) -> tuple[str, ...]:
    """The first non-blank line's column names; none for an empty file."""
    if line is None:
        return ()
    where = f"job file {path}: header (line {line.number})"
    if line.too_long:
        raise JobFileError(f"{where} is longer than {MAX_LINE_BYTES} bytes")
    try:
        names = _csv_cells(line.raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise JobFileError(f"{where} is not valid UTF-8; save the file as UTF-8") from None
    except csv.Error as exc:
        raise JobFileError(f"{where} is not valid CSV ({exc})") from None
    _check_header(where, names)
    # A goeasy `messages` cell of 10,000 timestamps exceeds csv's default 128 KiB field limit;
    # no cell can be longer than a line.
    if csv.field_size_limit() < MAX_LINE_BYTES:
        csv.field_size_limit(MAX_LINE_BYTES)
    return tuple(names)


def _check_header(where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for column, name in enumerate(names, start=1):
        if not name:
            raise JobFileError(f"{where}: column {column} has no name")
        if name in seen:
            raise JobFileError(f"{where}: column {name!r} appears twice")
        seen.add(name)
    for required in ("vendor", "op"):
        if required not in seen:
            hint = ""
            if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
                hint = "; columns must be separated by commas"
            raise JobFileError(f"{where} has no {required!r} column{hint}")
