"""Properties of the job reader and the row schema (Hypothesis), so that a faster parser cannot
change what a job file means:

- any rows a generator writes as JSONL and as CSV (every quoting, BOM, CRLF, trailing empty
  cells and header columns, cells over several lines, blank lines) read back to the same items,
  with the same identities (resume keys) and the right line numbers;
- arbitrary bytes never crash the reader, and every item it yields is one a canonical row of
  its own would ask for (nothing half-read becomes an item);
- a cut JSONL row is never an item;
- the CSV cell splitter reads rows as the standard library's strict reader does.
"""

from __future__ import annotations

import csv
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchrecall.errors import JobFileError
from batchrecall.intake.csvcells import CsvError, split_cells
from batchrecall.intake.reader import read_job
from batchrecall.models import InvalidRow, Item
from batchrecall.results.report import job_row

Row = dict[str, Any]
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- rows ------------------------------------------------------------------------------------

_TEXT_CHARS = st.characters(exclude_categories=["Cs"])
_text = st.text(_TEXT_CHARS, min_size=1, max_size=12)
# Ids that go into a URL: no / \ % whitespace or control characters, and not . or ..
_url_id = st.text(
    st.characters(
        exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"],
        exclude_characters="/\\%|\x85\xa0\u1680\u2028\u2029\x1c\x1d\x1e\x1f",
    ),
    min_size=1,
    max_size=10,
).filter(lambda s: s not in (".", "..") and not any(c.isspace() for c in s))
_digits = st.text(string.digits, min_size=1, max_size=32)
_stamps = st.lists(st.integers(1, 2**63 - 1), min_size=1, max_size=5)
_no = st.none()


@st.composite
def _conversation(draw: st.DrawFn, *, types: str = "123") -> str:
    return f"{draw(_url_id)}|{draw(st.sampled_from(types))}|{draw(_url_id)}"


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(_no, strategy)


@st.composite
def job_rows(draw: st.DrawFn) -> Row:
    """One valid row of any vendor and op; None values are absent fields."""
    kind = draw(st.sampled_from(range(7)))
    row: Row
    if kind == 0:
        row = {
            "vendor": "easemob", "op": "recall", "msg_id": draw(_digits), "to": draw(_text),
            "chat_type": draw(st.sampled_from(["chat", "groupchat", "chatroom"])),
            "from": draw(_optional(_text)), "force": draw(_optional(st.booleans())),
            "sync_device": draw(_optional(st.booleans())),
        }  # fmt: skip
    elif kind == 1:
        row = {
            "vendor": "easemob", "op": "delete_conversation", "username": draw(_url_id),
            "channel": draw(_text), "type": draw(st.sampled_from(["chat", "groupchat"])),
            "delete_roam": draw(st.booleans()),
        }  # fmt: skip
    elif kind == 2:
        row = {"vendor": "goeasy", "op": "recall", "messages": draw(_stamps)}
        if draw(st.booleans()):
            row["groupId"] = draw(_text)
        else:
            row["userAId"], row["userBId"] = draw(_text), draw(_text)
        recaller = {"id": draw(_text), "data": draw(st.one_of(_text, st.just({"k": [1, "x"]})))}
        row["recaller"] = draw(_optional(st.just(recaller)))
    elif kind == 3:
        conversation = draw(_conversation())
        one_way_ok = conversation.split("|")[1] != "3"
        row = {
            "vendor": "yunxin", "op": "recall", "conversation_id": conversation,
            "message_server_id": draw(_digits),
            "type": draw(_optional(st.sampled_from([1, 2] if one_way_ok else [2]))),
            "description": draw(_optional(st.text(_TEXT_CHARS, min_size=1, max_size=20))),
            "ignore_revoke_time": draw(_optional(st.booleans())),
        }  # fmt: skip
    elif kind == 4:
        row = {
            "vendor": "yunxin", "op": "delete_message",
            "conversation_id": draw(_conversation(types="12")),
            "message_server_id": draw(_digits), "description": draw(_optional(_text)),
        }  # fmt: skip
    elif kind == 5:
        row = {
            "vendor": "yunxin", "op": "delete_conversation",
            "conversation_id": draw(_conversation()),
            "clear_message": draw(_optional(st.booleans())),
        }  # fmt: skip
    else:
        row = {
            "vendor": "yunxin", "op": "clear_history", "conversation_id": draw(_conversation()),
            "type": draw(_optional(st.sampled_from([1, 2, 3]))),
        }  # fmt: skip
    row["app"] = draw(_optional(st.sampled_from(["default", "eu-1", "A_b"])))
    row["ref"] = draw(_optional(_text))
    row["sent_at"] = draw(_optional(st.integers(1, 10**16 - 1)))
    return {name: value for name, value in row.items() if value is not None}


# -- writing them as operators' files do -------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How a file is laid out: what spreadsheets and scripts vary."""

    bom: bool
    crlf: bool
    quote_all: bool
    extra_columns: int
    blank_every: int
    flag_words: tuple[str, str]
    list_style: str


layouts = st.builds(
    Layout,
    bom=st.booleans(),
    crlf=st.booleans(),
    quote_all=st.booleans(),
    extra_columns=st.integers(0, 3),
    blank_every=st.integers(0, 3),
    flag_words=st.sampled_from([("true", "false"), ("TRUE", "FALSE"), ("1", "0"), ("Yes", "no")]),
    list_style=st.sampled_from(["json", "semicolons", "spaced"]),
)


def _cell(value: Any, layout: Layout) -> str:
    if isinstance(value, bool):
        return layout.flag_words[0] if value else layout.flag_words[1]
    if isinstance(value, list):
        if len(value) == 1 and layout.list_style != "json":
            return str(value[0])
        if layout.list_style == "json":
            return orjson.dumps(value).decode()
        return (" ; " if layout.list_style == "spaced" else ";").join(map(str, value))
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def _quoted(cell: str, layout: Layout) -> str:
    if layout.quote_all or any(char in cell for char in ',"\r\n') or cell.startswith(" "):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def write_csv(path: Path, rows: list[Row], layout: Layout) -> list[int]:
    """The file, and each row's first line number (the header is line 1)."""
    columns: list[str] = []
    for row in rows:
        columns += [name for name in row if name not in columns]
    end = "\r\n" if layout.crlf else "\n"
    width = len(columns) + layout.extra_columns
    lines = [",".join([*(_quoted(c, layout) for c in columns), *[""] * layout.extra_columns])]
    starts: list[int] = []
    line = 2
    for n, row in enumerate(rows):
        if layout.blank_every and n % layout.blank_every == 0:
            lines.append("" if n % 2 else "," * (width - 1))  # blank, or a row of empty cells
            line += 1
        cells = [_quoted(_cell(row[c], layout), layout) if c in row else "" for c in columns]
        text = ",".join([*cells, *[""] * layout.extra_columns])
        starts.append(line)
        lines.append(text)
        line += text.count("\n") + 1
    data = end.join(lines).encode() + end.encode()
    path.write_bytes((b"\xef\xbb\xbf" if layout.bom else b"") + data)
    return starts


def write_jsonl(path: Path, rows: list[Row], layout: Layout) -> list[int]:
    end = b"\r\n" if layout.crlf else b"\n"
    chunks: list[bytes] = []
    starts: list[int] = []
    for n, row in enumerate(rows):
        if layout.blank_every and n % layout.blank_every == 0:
            chunks.append(b"  ")
        chunks.append(orjson.dumps(row))
        starts.append(len(chunks))
    path.write_bytes((b"\xef\xbb\xbf" if layout.bom else b"") + end.join(chunks) + end)
    return starts


def meaning(item: Item) -> tuple[Any, ...]:
    """Everything an item is, less where it came from."""
    return (
        item.vendor, item.app, item.op, item.ref, item.index, item.target, item.ids,
        item.options, item.batch_key, dict(item.params), item.item_key, item.sent_at,
    )  # fmt: skip


def read_items(path: Path) -> list[Item]:
    rows = list(read_job(path, job_name="job"))
    problems = [row.problem for row in rows if isinstance(row, InvalidRow)]
    assert not problems, problems
    return [row for row in rows if isinstance(row, Item)]


# -- properties --------------------------------------------------------------------------------


@SETTINGS
@given(rows=st.lists(job_rows(), min_size=1, max_size=6), layout=layouts)
def test_jsonl_and_csv_read_back_to_the_same_items(
    tmp_path: Path, rows: list[Row], layout: Layout
) -> None:
    jsonl_lines = write_jsonl(tmp_path / "job.jsonl", rows, layout)
    csv_lines = write_csv(tmp_path / "job.csv", rows, layout)
    from_jsonl = read_items(tmp_path / "job.jsonl")
    from_csv = read_items(tmp_path / "job.csv")
    assert [meaning(item) for item in from_jsonl] == [meaning(item) for item in from_csv]
    # every row's items name the row's first line
    assert sorted({item.line for item in from_jsonl}) == jsonl_lines
    assert sorted({item.line for item in from_csv}) == csv_lines
    # and the identities are those of the rows as given
    expected = sum(len(row["messages"]) if row["vendor"] == "goeasy" else 1 for row in rows)
    assert len(from_jsonl) == expected


@SETTINGS
@given(rows=st.lists(job_rows(), min_size=1, max_size=4))
def test_an_item_asks_for_what_its_canonical_row_asks(tmp_path: Path, rows: list[Row]) -> None:
    path = tmp_path / "job.jsonl"
    write_jsonl(path, rows, Layout(False, False, False, 0, 0, ("true", "false"), "json"))
    for item in read_items(path):
        again = tmp_path / "again.jsonl"
        again.write_bytes(orjson.dumps(job_row(item)) + b"\n")
        (copy,) = read_items(again)
        assert (copy.item_key, dict(copy.params)) == (item.item_key, dict(item.params))


@SETTINGS
@given(data=st.binary(max_size=400), header=st.booleans(), suffix=st.sampled_from(["jsonl", "csv"]))
def test_arbitrary_bytes_never_crash_the_reader(
    tmp_path: Path, data: bytes, header: bool, suffix: str
) -> None:
    path = tmp_path / f"job.{suffix}"
    prefix = b"vendor,op,msg_id,to,chat_type,conversation_id,message_server_id,ref\n"
    path.write_bytes((prefix if header and suffix == "csv" else b"") + data)
    if suffix == "csv" and not header:  # the bytes are the header: unreadable, or a file
        try:
            rows = list(read_job(path))
        except JobFileError:
            return
    else:
        rows = list(read_job(path))
    lines = [row.line for row in rows]
    assert lines == sorted(lines)
    for row in rows:
        assert isinstance(row, Item | InvalidRow)
        if isinstance(row, Item):
            again = tmp_path / "again.jsonl"
            again.write_bytes(orjson.dumps(job_row(row)) + b"\n")
            (copy,) = read_items(again)
            assert copy.item_key == row.item_key


@SETTINGS
@given(row=job_rows(), cut=st.floats(0.0, 0.999))
def test_a_cut_jsonl_row_is_never_an_item(tmp_path: Path, row: Row, cut: float) -> None:
    text = orjson.dumps(row)
    path = tmp_path / "job.jsonl"
    path.write_bytes(text[: int(len(text) * cut)] + b"\n" + text + b"\n")
    rows = list(read_job(path))
    assert isinstance(rows[-1], Item)  # the whole row after it still reads
    assert all(isinstance(r, InvalidRow) for r in rows if r.line == 1)


_csv_text = st.text(st.sampled_from('ab ,"\n\r\x00é'), max_size=30)


@SETTINGS
@given(text=_csv_text)
def test_cells_split_as_the_standard_csv_reader_splits_them(text: str) -> None:
    try:
        expected: list[str] | None = next(csv.reader([text], strict=True), [""])
    except csv.Error:
        expected = None
    try:
        got: list[str] | None = split_cells(text)
    except CsvError:
        got = None
    if text == "" or text.endswith(("\r", "\n")):
        return  # a blank line, or a line ending: the reader drops both before it splits a row
    assert got == expected
