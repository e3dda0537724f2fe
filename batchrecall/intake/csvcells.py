"""CSV as spreadsheets write it (RFC 4180, the excel dialect): where a row ends, and its cells.

The standard library's `csv` module caps a cell at 128 KiB unless the process-wide
`csv.field_size_limit()` is raised, and cannot say where a row ends without reading on. These two
functions need neither: `quote_open_after` tells whether a quoted cell runs past a physical
line, and `split_cells` reads a whole row the way `csv.reader(..., strict=True)` does.
"""

from __future__ import annotations

import re

__all__ = ["CsvError", "quote_open_after", "split_cells"]

# A quoted cell's inside: anything but a quote, or a doubled quote (an escaped one).
_QUOTED_BODY = re.compile(r'(?:[^"]++|"")*+')


class CsvError(ValueError):
    """A row that is not CSV; the text says what is wrong, in the csv module's own words."""


def quote_open_after(text: str, *, inside: bool) -> bool:
    """Whether a quoted cell is still open at the end of `text` (a physical line without its
    ending), given whether one was open at its start. Only `"` and `,` matter here, so any
    text whose bytes keep ASCII as it is (decoded as latin-1 for speed) gives the same answer.
    """
    length = len(text)
    at = 0
    while True:
        if inside:
            at = _QUOTED_BODY.match(text, at).end()  # type: ignore[union-attr]  # always matches
            if at >= length:
                return True
            inside = False  # the closing quote; what follows up to a comma is the same cell
            comma = text.find(",", at + 1)
        elif at < length and text[at] == '"':
            inside = True
            at += 1
            continue
        else:
            comma = text.find(",", at)
        if comma < 0:
            return False
        at = comma + 1


def split_cells(text: str) -> list[str]:
    """A whole row's cells (quoted cells may hold line breaks), as `csv.reader` in strict mode
    reads them; CsvError for an unclosed quote, text after a closing quote, or a line break
    outside quotes."""
    cells: list[str] = []
    length = len(text)
    at = 0
    while True:
        if at < length and text[at] == '"':
            end = _QUOTED_BODY.match(text, at + 1).end()  # type: ignore[union-attr]
            if end >= length:
                raise CsvError("unexpected end of data")
            cells.append(text[at + 1 : end].replace('""', '"'))
            at = end + 1
            if at == length:
                return cells
            if text[at] != ",":
                raise CsvError("',' expected after '\"'")
            at += 1
            continue
        comma = text.find(",", at)
        cell = text[at:] if comma < 0 else text[at:comma]
        if "\n" in cell or "\r" in cell:
            raise CsvError("new-line character seen in unquoted field")
        cells.append(cell)
        if comma < 0:
            return cells
        at = comma + 1
