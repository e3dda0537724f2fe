"""Streaming job-file reader (SPEC §2): JSONL or CSV, into Items and invalid rows.

Files are read in binary one physical line at a time, so memory stays flat on any file length.
UTF-8 with or without BOM (or the encoding the operator names), LF or CRLF; blank lines are
skipped but still counted, so every row keeps its physical line number (CSV: the header is line
1; a row whose quoted cell spans lines is named by its first line). Rows are checked by
`intake.schema`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import orjson

from batchrecall.errors import JobFileError
from batchrecall.intake.csvcells import CsvError, quote_open_after, split_cells
from batchrecall.intake.encoding import DEFAULT_ENCODING, job_encoding, undecodable_problem
from batchrecall.intake.fields import parse_json
from batchrecall.intake.schema import invalid_row, items_from_row
from batchrecall.intake.typed import typed_items
from batchrecall.models import InvalidRow, Item

__all__ = ["MAX_LINE_BYTES", "read_job"]

MAX_LINE_BYTES = 1 << 20
"""The longest row: one physical line, or the lines of a CSV row whose quoted cell spans them."""
_BOM = b"\xef\xbb\xbf"
_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_TOO_LONG = f"line is longer than {MAX_LINE_BYTES} bytes"


def read_job(
    path: Path, *, job_name: str | None = None, encoding: str = DEFAULT_ENCODING
) -> Iterator[Item | InvalidRow]:
    """Stream a job file's rows as Items (several for a row holding a list) and InvalidRows.

    `job_name` (default: `str(path)`) is what Items and InvalidRows name as their job, and
    `encoding` the file's text encoding (UTF-8 by default, a leading BOM dropped). A file that
    cannot be read at all (missing, a directory, unreadable, an extension other than
    .jsonl/.ndjson/.csv, an encoding that cannot be read line by line, a CSV header with an
    empty or repeated column name or without `vendor` and `op` columns) raises JobFileError
    here, before anything is yielded; so does the iterator if reading fails part-way. Every
    other problem is an InvalidRow for its line (a row longer than MAX_LINE_BYTES too).

    CSV is read as spreadsheets write it: empty header cells at the end and empty cells at the
    end of a row are ignored, a quoted cell may span lines, and a row of empty cells is skipped
    like a blank line. A quote that never closes makes its first line an invalid row, and the
    lines after it are read again as rows of their own.
    """
    job = str(path) if job_name is None else job_name
    codec = job_encoding(encoding)
    if _FORMATS.get(path.suffix.lower()) == "jsonl":
        rows = _jsonl_rows(_open_file(path), path, codec, job)
        next(rows)  # enters the generator, which owns the file from then on
        return cast(Iterator[Item | InvalidRow], rows)
    return _open(path, codec).rows(job)


@dataclass(frozen=True, slots=True)
class _Line:
    """One physical line, without its line ending (kept apart), or the file's BOM."""

    number: int
    raw: bytes
    ending: bytes = b""
    too_long: bool = False

    @property
    def blank(self) -> bool:
        return not self.raw.strip()


@dataclass(frozen=True, slots=True)
class _Record:
    """One row's bytes: a line, or the lines a quoted CSV cell joins (named by the first)."""

    number: int
    raw: bytes
    problem: str = ""
    last: int = 0
    """The row's last line where it spans several; 0 for a one-line row."""


@dataclass(frozen=True, slots=True)
class _JobSource:
    """An opened CSV job file: its rows still to read, and the header's column names."""

    records: Iterator[_Record]
    lines: Generator[_Line, None, None]
    encoding: str
    header: tuple[str, ...] = ()

    def rows(self, job: str) -> Iterator[Item | InvalidRow]:
        try:
            for record in self.records:
                result = self._row(job, record)
                if isinstance(result, list):
                    yield from result
                elif result is not None:
                    yield result
        finally:
            self.lines.close()  # closes the file when the caller stops early

    def _row(self, job: str, record: _Record) -> list[Item] | InvalidRow | None:
        def invalid(problem: str) -> InvalidRow:
            if record.last:
                problem = f"{problem} (the row spans lines {record.number}-{record.last})"
            return invalid_row(job=job, line=record.number, raw=record.raw, problem=problem)

        if record.problem:
            return invalid(record.problem)
        try:
            text = record.raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            return invalid(undecodable_problem(record.raw, self.encoding, exc))
        fields = _csv_fields(text, self.header)
        if isinstance(fields, str):
            return invalid(fields)
        if not fields:
            return None  # a row of empty cells, as spreadsheets leave at the end
        return items_from_row(fields, from_csv=True, job=job, line=record.number, raw=record.raw)


def _jsonl_rows(
    file: BinaryIO, path: Path, encoding: str, job: str
) -> Generator[Item | InvalidRow | None, None, None]:
    """A JSONL file's rows, one physical line each: first a None once the file is held (closing
    the generator, or dropping it, then closes the file even if no row was asked for). The
    common valid row is decoded straight from its bytes by the typed path."""
    utf8 = encoding == DEFAULT_ENCODING
    readline = file.readline
    number = 0
    with file:
        yield None
        while True:
            try:
                chunk = readline(MAX_LINE_BYTES + 1)
            except OSError as exc:
                raise JobFileError(
                    f"job file {path}: read failed after line {number} ({exc.strerror or exc})"
                ) from exc
            if not chunk:
                return
            number += 1
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                _skip_rest_of_line(file, path, number)
                yield invalid_row(
                    job=job, line=number, raw=chunk[:MAX_LINE_BYTES],
                    problem=_TOO_LONG,
                )  # fmt: skip
                continue
            raw = chunk.removesuffix(b"\n").removesuffix(b"\r")
            if number == 1 and raw.startswith(_BOM):
                _check_bom(path, encoding)
                raw = raw[len(_BOM) :]
            if not raw.strip():
                continue
            if utf8 and (items := typed_items(raw, job=job, line=number)):
                if len(items) == 1:
                    yield items[0]
                else:
                    yield from items
                continue
            result = _careful_json_row(raw, encoding, job, number, utf8)
            if isinstance(result, list):
                yield from result
            else:
                yield result


def _careful_json_row(
    raw: bytes, encoding: str, job: str, number: int, tried: bool
) -> list[Item] | InvalidRow:
    """A JSONL row the typed path did not take (`tried`) or could not: its Items, or the
    sentence that says what is wrong with it."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        problem = undecodable_problem(raw, encoding, exc)
        return invalid_row(job=job, line=number, raw=raw, problem=problem)
    if not tried and (items := typed_items(text, job=job, line=number)):
        return items
    fields = _json_fields(text)
    if isinstance(fields, str):
        return invalid_row(job=job, line=number, raw=raw, problem=fields)
    return items_from_row(fields, from_csv=False, job=job, line=number, raw=raw)


def _check_bom(path: Path, encoding: str) -> None:
    if encoding != DEFAULT_ENCODING:
        raise JobFileError(
            f"job file {path} starts with a UTF-8 byte order mark but its encoding "
            f"was given as {encoding}: leave out --encoding"
        )


def _open_file(path: Path) -> BinaryIO:
    """The job file, opened; JobFileError naming why it cannot be."""
    if _FORMATS.get(path.suffix.lower()) is None:
        raise JobFileError(
            f"job file {path}: unknown format {path.suffix or '(no extension)'!r}; "
            "name it .jsonl, .ndjson or .csv"
        )
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise JobFileError(f"job file {path}: no such file") from None
    except IsADirectoryError:
        raise JobFileError(f"job file {path}: is a directory, not a file") from None
    except OSError as exc:
        raise JobFileError(f"job file {path}: cannot be opened ({exc.strerror or exc})") from None


def _open(path: Path, encoding: str) -> _JobSource:
    """Open a CSV job file and read its header; JobFileError if it cannot be used."""
    lines = _lines(_open_file(path), path, encoding)
    try:
        # Reading a line enters `_lines`, which owns the file from then on: closing the
        # generator, or dropping it, closes the file even if no row is ever asked for.
        records = _csv_records(lines)
        header = _csv_header(path, next(records, None), encoding)
        return _JobSource(records, lines, encoding, header=header)
    except BaseException:
        lines.close()
        raise


def _lines(file: BinaryIO, path: Path, encoding: str) -> Generator[_Line, None, None]:
    """Every physical line; reads at most MAX_LINE_BYTES at a time, whatever the file."""
    with file:
        number = 0
        while chunk := _read_line(file, path, number, MAX_LINE_BYTES + 1):
            number += 1
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                _skip_rest_of_line(file, path, number)
                yield _Line(number, chunk[:MAX_LINE_BYTES], too_long=True)
                continue
            if number == 1 and chunk.startswith(_BOM):
                _check_bom(path, encoding)
                chunk = chunk[len(_BOM) :]
            body = chunk.removesuffix(b"\n").removesuffix(b"\r")
            yield _Line(number, body, chunk[len(body) :])


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


def _csv_records(lines: Iterator[_Line]) -> Iterator[_Record]:
    """The CSV rows: a line each, or the lines a quoted cell joins. Lines are scanned for
    quotes and commas as latin-1, which any readable encoding (`intake.encoding`) keeps."""
    again: deque[_Line] = deque()  # lines of an unclosed quote's row, to be read again

    def next_line() -> _Line | None:
        return again.popleft() if again else next(lines, None)

    while (line := next_line()) is not None:
        if line.too_long:
            yield _Record(line.number, line.raw, problem=_TOO_LONG)
            continue
        if line.blank:
            continue
        text = line.raw.decode("latin-1")
        if '"' not in text or not quote_open_after(text, inside=False):
            yield _Record(line.number, line.raw)
            continue
        joined = [line]
        size = len(line.raw)
        while True:
            more = next_line()
            if more is not None and not more.too_long:
                size += len(joined[-1].ending) + len(more.raw)
            if more is None or more.too_long or size > MAX_LINE_BYTES:
                yield _Record(
                    line.number,
                    line.raw,
                    problem="line is not valid CSV (a quoted cell opened on this line never "
                    f"closes within {MAX_LINE_BYTES} bytes)",
                )
                again.extendleft(reversed(joined[1:] + ([more] if more is not None else [])))
                break
            joined.append(more)
            if not quote_open_after(more.raw.decode("latin-1"), inside=True):
                raw = b"".join(part.raw + part.ending for part in joined[:-1]) + more.raw
                yield _Record(line.number, raw, last=more.number)
                break


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


def _csv_fields(text: str, header: tuple[str, ...]) -> dict[str, str] | str:
    """A CSV row's non-empty cells by column name, or the problem with the row."""
    try:
        cells = split_cells(text)
    except CsvError as exc:
        return f"line is not valid CSV ({exc})"
    if len(cells) > len(header):
        # Spreadsheets write empty cells out to the widest row or column they ever held.
        while len(cells) > len(header) and cells[-1] == "":
            cells.pop()
    if len(cells) != len(header):
        return f"row has {len(cells)} cells but the header has {len(header)} columns"
    return {name: cell for name, cell in zip(header, cells, strict=True) if cell != ""}


def _csv_header(path: Path, record: _Record | None, encoding: str) -> tuple[str, ...]:
    """The first row's column names, empty names at the end dropped; none for an empty file."""
    if record is None:
        return ()
    where = f"job file {path}: header (line {record.number})"
    if record.problem:
        raise JobFileError(f"{where} {record.problem.removeprefix('line ')}")
    try:
        names = split_cells(record.raw.decode(encoding))
    except UnicodeDecodeError as exc:
        problem = undecodable_problem(record.raw, encoding, exc).removeprefix("line ")
        raise JobFileError(f"{where} {problem}") from None
    except CsvError as exc:
        raise JobFileError(f"{where} is not valid CSV ({exc})") from None
    while names and names[-1] == "":
        names.pop()
    _check_header(where, names)
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
