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
from io import BufferedReader
from pathlib import Path
from typing import Any, BinaryIO, cast

import orjson

from batchrecall.errors import JobFileError
from batchrecall.intake.csvcells import CsvError, quote_open_after, split_cells
from batchrecall.intake.encoding import DEFAULT_ENCODING, job_encoding, undecodable_problem
from batchrecall.intake.fields import parse_json
from batchrecall.intake.schema import invalid_row, items_from_row
from batchrecall.intake.typed import typed_block_keys, typed_items
from batchrecall.models import InvalidRow, Item

__all__ = ["MAX_LINE_BYTES", "read_job", "read_job_keys"]

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


def read_job_keys(
    path: Path, *, job_name: str | None = None, encoding: str = DEFAULT_ENCODING
) -> Iterator[list[str] | InvalidRow]:
    """The item key of every item `read_job` would yield (in lists, a block of rows at a time)
    and the same invalid rows in their order, without making the Items: what `validate` counts.
    A block's invalid rows come before its keys. Raises as `read_job` does."""
    job = str(path) if job_name is None else job_name
    codec = job_encoding(encoding)
    if _FORMATS.get(path.suffix.lower()) == "jsonl":
        rows = _jsonl_keys(_open_file(path), path, codec, job)
        next(rows)
        return cast(Iterator[list[str] | InvalidRow], rows)
    return _item_keys(_open(path, codec).rows(job))


def _item_keys(rows: Iterator[Item | InvalidRow]) -> Iterator[list[str] | InvalidRow]:
    for row in rows:
        yield row if isinstance(row, InvalidRow) else [row.item_key]


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
    file: BufferedReader, path: Path, encoding: str, job: str
) -> Generator[Item | InvalidRow | None, None, None]:
    """A JSONL file's rows, one physical line each: first a None once the file is held (closing
    the generator, or dropping it, then closes the file even if no row was asked for). The
    common valid row is decoded straight from its bytes by the typed path."""
    utf8 = encoding == DEFAULT_ENCODING
    with file:
        yield None
        for first, lines in _line_blocks(file, path, encoding):
            for number, raw in enumerate(lines, first):
                if len(raw) > MAX_LINE_BYTES:
                    yield _too_long(job, number, raw)
                    continue
                if not raw.strip():
                    continue
                if utf8 and (items := typed_items(raw, job=job, line=number)):
                    if len(items) == 1:
                        yield items[0]
                    else:
                        yield from items
                    continue
                yield from _careful_json_rows(raw, encoding, job, number, utf8)


def _jsonl_keys(
    file: BufferedReader, path: Path, encoding: str, job: str
) -> Generator[list[str] | InvalidRow | None, None, None]:
    """`_jsonl_rows` with each Item's key standing for it: a block's invalid rows in order, then
    its keys in a list."""
    utf8 = encoding == DEFAULT_ENCODING
    with file:
        yield None
        for first, lines in _line_blocks(file, path, encoding):
            if utf8:
                keys, rest = typed_block_keys(lines, MAX_LINE_BYTES)
            else:
                keys, rest = [], list(range(len(lines)))
            for index in rest:
                raw, number = lines[index], first + index
                if len(raw) > MAX_LINE_BYTES:
                    yield _too_long(job, number, raw)
                    continue
                if not raw.strip():
                    continue
                for row in _careful_json_rows(raw, encoding, job, number, utf8):
                    if isinstance(row, InvalidRow):
                        yield row
                    else:
                        keys.append(row.item_key)
            if keys:
                yield keys


_BLOCK_BYTES = 1 << 17


def _line_blocks(
    file: BufferedReader[Any], path: Path, encoding: str
) -> Iterator[tuple[int, list[bytes]]]:
    """The file's physical lines a block at a time, each without its line ending, with the
    number of the block's first line; a leading BOM is dropped. A line longer than
    MAX_LINE_BYTES comes longer than that (so its length says it), cut where it spans blocks:
    its rest is never held in memory."""
    number = 1  # of the line the next block starts
    head = b""  # a line the last block cut, to be joined to the next
    dropping = False  # head is a too-long line's start: its rest is dropped up to its end
    block = _read_block(file, path, number)
    while 0 < len(block) < len(_BOM) and (more := _read_block(file, path, number)):
        block += more  # a pipe may give fewer bytes than a BOM's at first
    if block.startswith(_BOM):
        _check_bom(path, encoding)
        block = block[len(_BOM) :] or _read_block(file, path, number)
    while block:
        if dropping:
            end = block.find(b"\n")
            if end < 0:
                block = _read_block(file, path, number)
                continue
            yield number, [head]
            number += 1
            head, dropping, block = b"", False, block[end + 1 :]
        lines = block.split(b"\n")
        lines[0] = head + lines[0]
        head = lines.pop()
        if len(head) > MAX_LINE_BYTES:
            head, dropping = head[: MAX_LINE_BYTES + 1], True
        if lines:
            if b"\r" in block or lines[0].endswith(b"\r"):  # a CR may end the last block
                _drop_carriage_returns(lines)
            yield number, lines
            number += len(lines)
        block = _read_block(file, path, number)
    if head:
        yield number, [head if dropping else head.removesuffix(b"\r")]


def _drop_carriage_returns(lines: list[bytes]) -> None:
    """CRLF endings, less their LF, lose the CR; a line too long keeps it (and stays too long)."""
    for index, line in enumerate(lines):
        if line.endswith(b"\r") and len(line) <= MAX_LINE_BYTES:
            lines[index] = line[:-1]


def _read_block(file: BufferedReader[Any], path: Path, number: int) -> bytes:
    try:
        # What is there, up to a block: a pipe's first rows come before its writer is done.
        return file.read1(_BLOCK_BYTES)
    except OSError as exc:
        raise JobFileError(
            f"job file {path}: read failed after line {number - 1} ({exc.strerror or exc})"
        ) from exc


def _too_long(job: str, number: int, raw: bytes) -> InvalidRow:
    return invalid_row(job=job, line=number, raw=raw[:MAX_LINE_BYTES], problem=_TOO_LONG)


def _careful_json_rows(
    raw: bytes, encoding: str, job: str, number: int, tried: bool
) -> list[Item] | list[InvalidRow]:
    result = _careful_json_row(raw, encoding, job, number, tried)
    return [result] if isinstance(result, InvalidRow) else result


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


def _open_file(path: Path) -> BufferedReader:
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
