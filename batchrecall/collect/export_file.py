"""Easemob's hourly history export, as downloaded: gzip (or plain) JSON records, one a line or
pretty-printed objects back to back (the documents show no framing; research/history-apis §1.2).

Files are read in blocks, so memory stays flat however large an export is. In one-a-line files a
block is searched for the senders' ids first and only the lines that hold one are parsed: a busy
hour is millions of records and the operator wants a few senders' of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
from isal import isal_zlib as zlib  # igzip: inflates an export 1.6 x faster than zlib

__all__ = ["ExportError", "ExportScan", "Found", "scan_export"]

Found = tuple[str, dict[str, Any]]

_BLOCK = 1 << 18  # a block is searched while it is still in the CPU's cache
_COMPRESSED_READ = 1 << 16
_LONGEST_RECORD = 16 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_NAMED = 5
_WHITESPACE = b" \t\r\n"
_NEWLINE = b"\n"


# isal's stubs do not type its error class as an exception.
_INFLATE_ERROR = cast(type[Exception], zlib.error)


class ExportError(Exception):
    """An export file that cannot be read on: the text names the file and where it stopped."""


@dataclass
class ExportScan:
    """What one scan read: counts, and the first malformed records (file and line)."""

    records: int = 0
    candidates: int = 0
    malformed: int = 0
    malformed_named: list[str] = field(default_factory=list)

    def bad(self, where: str, problem: str) -> None:
        self.malformed += 1
        if len(self.malformed_named) < _MAX_NAMED:
            self.malformed_named.append(f"{where}: {problem}")


def scan_export(path: Path, *, needles: tuple[bytes, ...], scan: ExportScan) -> Iterator[Found]:
    """The records of one export file that may match, each with where it is (file and line, or
    record number): every record holding one of `needles`
    (the senders' ids as JSON strings; empty: every record). ExportError for a file that cannot
    be opened, is not gzip or JSON text, or is cut short (after yielding what came before)."""
    blocks = _blocks(path)
    first = next(blocks, b"")
    start = first.lstrip(_WHITESPACE)
    if start and not start.startswith(b"{"):
        raise ExportError(f"export {path}: not an export of JSON records (starts {start[:20]!r})")
    first_line = start.split(b"\n", 1)[0]
    if b"\n" in start and _is_object(first_line):
        yield from _lines(path, _chain(first, blocks), needles, scan)
    else:
        yield from _objects(path, _chain(first, blocks), scan)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _blocks(path: Path) -> Iterator[bytes]:
    """The file's text in blocks: gunzipped (every member of a multi-member gzip) or as it is."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ExportError(f"export {path}: cannot be opened ({exc.strerror or exc})") from None
    with handle:
        head = handle.read(2)
        handle.seek(0)
        if head != _GZIP_MAGIC:
            while block := handle.read(_BLOCK):
                yield block
            return
        yield from _gunzip(path, handle.read)


def _gunzip(path: Path, read: Callable[[int], bytes]) -> Iterator[bytes]:
    inflate = zlib.decompressobj(wbits=31)
    while compressed := read(_COMPRESSED_READ):
        while compressed:
            if inflate.eof:  # another gzip member follows (or padding)
                if not compressed.strip(b"\x00"):
                    break
                inflate = zlib.decompressobj(wbits=31)
            try:
                text = inflate.decompress(compressed, _BLOCK)  # bounded: memory stays flat
            except _INFLATE_ERROR as exc:
                raise ExportError(f"export {path}: not a readable gzip file ({exc})") from None
            if text:
                yield text
            compressed = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
    if not inflate.eof:
        raise ExportError(
            f"export {path}: the gzip file is cut short (the records before the cut were read); "
            "download it again"
        )


def _lines(
    path: Path, blocks: Iterator[bytes], needles: tuple[bytes, ...], scan: ExportScan
) -> Iterator[Found]:
    carry = b""
    line_number = 0
    for block in blocks:
        first = block.find(_NEWLINE) + 1
        if not first:
            carry += block
            continue
        # The line begun in the block before is read on its own; the rest of the block's
        # whole lines where they are, without copying the block.
        head = carry + block[:first]
        line_number = yield from _block_lines(path, head, 0, len(head), line_number, needles, scan)
        cut = block.rfind(_NEWLINE) + 1
        line_number = yield from _block_lines(path, block, first, cut, line_number, needles, scan)
        carry = block[cut:]
    if carry.strip():
        carry += _NEWLINE
        yield from _block_lines(path, carry, 0, len(carry), line_number, needles, scan)


def _block_lines(
    path: Path,
    text: bytes,
    begin: int,
    end: int,
    lines_before: int,
    needles: tuple[bytes, ...],
    scan: ExportScan,
) -> Generator[Found, None, int]:
    """The whole lines of `text[begin:end]`, counted into `scan.records`, parsed where a needle
    or an escape is; returns the line number of the last."""
    if needles:
        starts = sorted(
            {_line_start(text, at) for needle in needles for at in _finds(text, needle, begin, end)}
            | set(_escaped_lines(text, begin, end))
        )
    elif begin < end:
        starts = [begin, *(at + 1 for at in _finds(text, _NEWLINE, begin, end) if at + 1 < end)]
    else:
        starts = []
    records_before = scan.records - lines_before  # of the files read before this one
    line_number, counted_to = lines_before + 1, begin
    for start in starts:
        line_number += text.count(_NEWLINE, counted_to, start)  # one pass over the block in all
        counted_to = start
        line = text[start : text.find(_NEWLINE, start)]
        if not line.strip():
            continue
        scan.candidates += 1
        where = f"{path}:{line_number}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            scan.bad(where, f"not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            scan.bad(where, "not a JSON object")
            continue
        scan.records = records_before + line_number  # read so far, if the reader stops here
        yield where, record
    last = line_number - 1 + text.count(_NEWLINE, counted_to, end)
    scan.records = records_before + last
    return last


def _escaped_lines(text: bytes, begin: int, end: int) -> Iterator[int]:
    """Where the lines holding a backslash start: a JSON string may write any character as an
    escape (`\\u002d` for `-`), so a sender's id there need not appear as its own bytes."""
    at = text.find(b"\\", begin, end)
    while at >= 0:
        yield _line_start(text, at)
        next_line = text.find(_NEWLINE, at, end)
        if next_line < 0:
            return
        at = text.find(b"\\", next_line, end)


def _finds(text: bytes, needle: bytes, begin: int, end: int) -> Iterator[int]:
    at = text.find(needle, begin, end)
    while at >= 0:
        yield at
        at = text.find(needle, at + len(needle), end)


def _line_start(text: bytes, at: int) -> int:
    return text.rfind(b"\n", 0, at) + 1


def _objects(path: Path, blocks: Iterator[bytes], scan: ExportScan) -> Iterator[Found]:
    """Pretty-printed records back to back: every record is parsed (no line to search)."""
    decoder = json.JSONDecoder()
    buffer = ""
    pending = b""
    number = 0
    for block in blocks:
        data = pending + block
        try:
            text = data.decode("utf-8")
            pending = b""
        except UnicodeDecodeError as exc:
            if exc.start < len(data) - 3:
                raise ExportError(
                    f"export {path}: not UTF-8 text near record {number + 1}"
                ) from None
            text, pending = data[: exc.start].decode("utf-8"), data[exc.start :]
        buffer += text
        at = 0
        while True:
            at = _skip_space(buffer, at)
            if at >= len(buffer):
                break
            try:
                record, end = decoder.raw_decode(buffer, at)
            except json.JSONDecodeError:
                if len(buffer) - at > _LONGEST_RECORD:  # the text is broken
                    raise ExportError(
                        f"export {path}: record {number + 1} is not JSON; the file may be damaged"
                    ) from None
                break  # the record goes on in the next block
            number += 1
            scan.records += 1
            scan.candidates += 1
            if isinstance(record, dict):
                yield f"{path}: record {number}", record
            else:
                scan.bad(f"{path}: record {number}", "not a JSON object")
            at = end
        buffer = buffer[at:]
    if buffer.strip():
        number += 1
        scan.records += 1
        scan.bad(f"{path}: record {number}", "cut short or not JSON")


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at
