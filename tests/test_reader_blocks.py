"""The JSONL reader's lines, read a block at a time, against a line-at-a-time reference; and the
keys `validate` counts against the Items a run reads (Hypothesis).

Blocks as small as a byte put every boundary everywhere: a line ending split between its CR and
LF, a BOM split over reads, a line too long spanning blocks.
"""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchrecall.intake import reader
from batchrecall.intake.reader import read_job, read_job_keys
from batchrecall.models import InvalidRow, Item
from tests.test_reader_properties import job_rows

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_SHORT = 12  # the longest line, in these tests
_pieces = st.lists(
    st.sampled_from([b"\n", b"\r", b"\r\n", b" ", b"\xef\xbb\xbf", b"{}", b"ab", b"x" * 9]),
    max_size=30,
).map(b"".join)


def reference_lines(data: bytes, limit: int) -> list[tuple[int, bytes, bool]]:
    """Line by line with readline, as the reader read before blocks: (number, bytes, too long).
    A leading BOM is not part of the first line's length."""
    file = io.BytesIO(data.removeprefix(b"\xef\xbb\xbf"))
    lines: list[tuple[int, bytes, bool]] = []
    number = 0
    while chunk := file.readline(limit + 1):
        number += 1
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            while (rest := file.readline(limit)) and not rest.endswith(b"\n"):
                pass
            lines.append((number, chunk[:limit], True))
            continue
        raw = chunk.removesuffix(b"\n").removesuffix(b"\r")
        lines.append((number, raw, False))
    return lines


def block_lines(data: bytes, limit: int) -> list[tuple[int, bytes, bool]]:
    lines: list[tuple[int, bytes, bool]] = []
    file = io.BufferedReader(io.BytesIO(data))
    for first, block in reader._line_blocks(file, Path("job.jsonl"), "utf-8"):
        for number, raw in enumerate(block, first):
            too_long = len(raw) > limit
            lines.append((number, raw[:limit] if too_long else raw, too_long))
    return lines


@SETTINGS
@given(data=_pieces, block=st.integers(1, 20))
def test_blocks_give_the_lines_readline_gives(
    monkeypatch: pytest.MonkeyPatch, data: bytes, block: int
) -> None:
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", _SHORT)
    monkeypatch.setattr(reader, "_BLOCK_BYTES", block)
    # An empty last line (a file of a BOM alone) may be there or not: a blank line is skipped.
    assert nonempty(block_lines(data, _SHORT)) == nonempty(reference_lines(data, _SHORT))


def nonempty(lines: list[tuple[int, bytes, bool]]) -> list[tuple[int, bytes, bool]]:
    return [line for line in lines if line[1] or line[2]]


def test_a_line_too_long_is_not_held_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", _SHORT)
    monkeypatch.setattr(reader, "_BLOCK_BYTES", 4)
    data = b"a" * 1_000 + b"\nok\n"
    lines = list(reader._line_blocks(io.BufferedReader(io.BytesIO(data)), Path("j"), "utf-8"))
    assert lines[0] == (1, [b"a" * (_SHORT + 1)])
    assert [line for _, block in lines[1:] for line in block] == [b"ok"]


def expected_keys(path: Path) -> tuple[list[str], list[InvalidRow]]:
    """The run's item keys (sorted: validate counts them) and its invalid rows, in order."""
    rows = list(read_job(path))
    keys = [row.item_key for row in rows if isinstance(row, Item)]
    return sorted(keys), [row for row in rows if isinstance(row, InvalidRow)]


def validate_keys(path: Path) -> tuple[list[str], list[InvalidRow]]:
    keys: list[str] = []
    invalid: list[InvalidRow] = []
    for row in read_job_keys(path):
        if isinstance(row, InvalidRow):
            invalid.append(row)
        else:
            assert row, "an empty list of keys"
            keys.extend(row)
    return sorted(keys), invalid


_line = st.one_of(
    job_rows().map(orjson.dumps),
    st.binary(max_size=40).map(lambda data: data.replace(b"\n", b"")),
    st.just(b""),
    st.just(
        b'{"vendor":"yunxin","op":"recall","conversation_id":"a@b|1|c","message_server_id":"1"}'
    ),
    st.just(b'{"vendor":"easemob","op":"recall","msg_id":"\xd9\xa1","to":"u","chat_type":"chat"}'),
)


@SETTINGS
@given(lines=st.lists(_line, max_size=12), block=st.integers(1, 64))
def test_validate_keys_are_the_run_items_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[bytes], block: int
) -> None:
    monkeypatch.setattr(reader, "_BLOCK_BYTES", block)
    for suffix in ("jsonl", "csv"):
        path = tmp_path / f"job.{suffix}"
        path.write_bytes(b"vendor,op,msg_id,to,chat_type\n" * (suffix == "csv") + b"\n".join(lines))
        assert validate_keys(path) == expected_keys(path)


def test_the_common_rows_are_keyed_without_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate's keys come from the typed rows themselves: no Item is made for them."""
    path = tmp_path / "job.jsonl"
    rows = [
        {"vendor": "easemob", "op": "recall", "msg_id": "1", "to": "u", "chat_type": "chat"},
        {"vendor": "yunxin", "op": "recall", "conversation_id": "a|1|b", "message_server_id": "2"},
    ]
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    made: list[object] = []

    def typed_items(*args: object, **kwargs: object) -> None:
        made.append(args)

    monkeypatch.setattr(reader, "typed_items", typed_items)
    assert validate_keys(path) == (
        ["easemob:default:recall:1:force=false", "yunxin:default:recall:a%7C1%7Cb:2:type=2"],
        [],
    )
    assert made == []
