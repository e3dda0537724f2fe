"""The corpus in tests/bad_inputs: every bad job file gives clear invalid rows or a JobFileError."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchrecall.errors import JobFileError
from batchrecall.intake.fields import MAX_TIMESTAMPS
from batchrecall.intake.reader import read_job
from batchrecall.models import InvalidRow, Item

CORPUS = Path(__file__).parent / "bad_inputs"


@dataclass(frozen=True)
class Rows:
    """Expected outcome of a readable file: its items count and its invalid rows' problems."""

    items: int
    invalid: dict[int, str]


@dataclass(frozen=True)
class Unreadable:
    """Expected JobFileError, by a fragment of its message."""

    message: str


def _float(name: str) -> str:
    return f"field '{name}' is a float and may have lost digits; write it as a string"


def _utf8(byte: int) -> str:
    return f"line is not valid UTF-8 (at byte {byte}); save the file as UTF-8"


_NOT_JSON = "line is not valid JSON: "
_URL = ": it goes into a URL"

EXPECTED: dict[str, Rows | Unreadable] = {
    "broken_json.jsonl": Rows(
        1,
        {
            2: _NOT_JSON + "unexpected end of data (column 52)",
            3: _NOT_JSON + "unexpected character, expected a string key (column 21)",
            4: _NOT_JSON + "unexpected content after document (column 22)",
            5: _NOT_JSON + "unexpected character, expected a string key (column 2)",
            6: _NOT_JSON + "unexpected character, expected a JSON value (column 30)",
        },
    ),
    "not_objects.jsonl": Rows(
        0,
        {
            1: "line must be a JSON object {...} (got a list)",
            2: "line must be a JSON object {...} (got a string)",
            3: "line must be a JSON object {...} (got a number)",
            4: "line must be a JSON object {...} (got null)",
        },
    ),
    "wrong_types.jsonl": Rows(
        0,
        {
            1: "field 'force' must be true or false (got 'true')",
            2: "field 'msg_id' must be a string (got a list)",
            3: "field 'to' must be a string (got an object)",
            4: "field 'delete_roam' must be true or false (got 'yes')",
            5: "field 'type' must be one of chat, groupchat (got 'chatroom')",
            6: "field 'ref' must be a string (got a list)",
            7: "field 'app' must be a string (got 5)",
            8: "field 'sync_device' must be true or false (got 1)",
        },
    ),
    "unknown_vendor_or_op.jsonl": Rows(
        0,
        {
            1: "field 'vendor' must be one of easemob, goeasy, rongcloud, tencent, yunxin "
            "(got 'wechat')",
            2: "missing field 'vendor'",
            3: "missing field 'op'",
            4: "field 'op' must be one of recall, delete_conversation for easemob "
            "(got 'delete_message')",
            5: "field 'op' must be one of recall for goeasy (got 'clear_history')",
            6: "field 'op' must be one of recall, delete_message, delete_conversation, "
            "clear_history for yunxin (got 'recal')",
        },
    ),
    "unknown_fields.jsonl": Rows(
        0,
        {
            1: "unknown field 'forse': easemob recall takes msg_id, to, chat_type, from, force, "
            "sync_device",
            2: "unknown field 'type': yunxin delete_message takes conversation_id, "
            "message_server_id, description",
            3: "unknown field 'recallerId': goeasy recall takes userAId, userBId, groupId, "
            "messages, recaller",
        },
    ),
    "float_ids.jsonl": Rows(
        0,
        {
            1: _float("msg_id"),
            2: _float("message_server_id"),
            3: _float("messages[1]"),
            4: _float("groupId"),
            5: _float("to"),
        },
    ),
    "huge_numbers.jsonl": Rows(
        0,
        {
            1: "field 'msg_id' must be 1 to 32 digits (got '9999999999",
            2: "line cannot be read as JSON (number 1e400 is out of range)",
        },
    ),
    "url_escapes.jsonl": Rows(
        0,
        {
            1: "field 'username' must not contain '/'" + _URL + " (got '../x')",
            2: "field 'username' must not contain '/'" + _URL + " (got 'a/b')",
            3: "field 'username' must not contain '%'" + _URL + " (got '%2F')",
            4: "field 'username' must not be '.' or '..'" + _URL + " path",
            5: "field 'username' must not contain '\\\\'" + _URL + " (got 'a\\\\b')",
            6: "field 'username' must not contain whitespace" + _URL + " (got ' user1')",
            7: "field 'conversation_id' must not contain '/'" + _URL + " (got '../x|1|bob')",
            8: "field 'conversation_id' must not contain '%'" + _URL + " (got 'alice|1|%2F')",
            9: "field 'conversation_id' must not have '.' or '..' as sender or receiver" + _URL,
            10: "field 'message_server_id' must be 1 to 32 digits (got '../1')",
            11: "field 'conversation_id' must not contain a control character" + _URL,
        },
    ),
    "invalid_utf8.jsonl": Rows(2, {2: _utf8(47), 3: _utf8(50), 4: _utf8(47)}),
    "bom_crlf.jsonl": Rows(
        1, {3: "field 'chat_type' must be one of chat, groupchat, chatroom (got 'group')"}
    ),
    "bom_crlf.csv": Rows(
        1,
        {
            4: "field 'chat_type' must be one of chat, groupchat, chatroom (got 'group')",
            5: "row has 4 cells but the header has 6 columns",
        },
    ),
    "ragged.csv": Rows(
        1,
        {
            2: "row has 5 cells but the header has 4 columns",
            3: "row has 3 cells but the header has 4 columns",
            4: "line is not valid CSV (a quoted cell opened on this line never closes",
        },
    ),
    "spreadsheet_floats.csv": Rows(
        0,
        {
            2: "field 'msg_id' was written as a float ('1.02844E+18') and may have lost digits; "
            "store the column as text",
            3: "field 'msg_id' was written as a float ('1028442084794698104.0') and may have "
            "lost digits; store the column as text",
        },
    ),
    "goeasy_bad.jsonl": Rows(
        0,
        {
            1: "give either 'groupId' or 'userAId' and 'userBId', not both",
            2: "missing field 'groupId' (or 'userAId' and 'userBId' for a private chat)",
            3: "missing field 'userBId'",
            4: "field 'messages' must hold 1 to 10000 timestamps (got 0); split the row",
            5: "field 'messages[0]' must be a positive integer timestamp in ms (got 'abc')",
            6: "field 'recaller' may hold only id and data (got 'name')",
        },
    ),
    "goeasy_bad.csv": Rows(
        0,
        {
            2: "field 'messages[1]' must be a positive integer timestamp in ms (got 'x')",
            3: "field 'messages' is not valid JSON (unexpected end of data); "
            "write a JSON array or values separated by ';'",
            4: "field 'recaller' is not valid JSON (invalid literal, expected 'null'); "
            'write a JSON object such as {"id": "u1"}',
        },
    ),
    "yunxin_bad.jsonl": Rows(
        0,
        {
            1: "field 'conversation_id' must be sender|type|receiver with type 1, 2 or 3 "
            "(got 'alice|4|bob')",
            2: "field 'conversation_id' must be sender|type|receiver with type 1, 2 or 3 "
            "(got 'alice|bob')",
            3: "field 'type' must be one of 1, 2 (got 3)",
            4: "field 'description' is longer than 128 characters",
            5: "field 'ignore_revoke_time' must be true, false, 0 or 1 (got 2)",
            6: "field 'type' must be one of 1, 2, 3 (got 4)",
            7: "field 'clear_message' must be true or false (got 'yes')",
        },
    ),
    "empty.jsonl": Rows(0, {}),
    "blank_lines.ndjson": Rows(0, {}),
    "header_only.csv": Rows(0, {}),
    "duplicate_header.csv": Unreadable("header (line 1): column 'msg_id' appears twice"),
    "empty_header_name.csv": Unreadable("header (line 1): column 3 has no name"),
    "semicolons.csv": Unreadable(
        "header (line 1) has no 'vendor' column; columns must be separated by commas"
    ),
    "not_utf8_header.csv": Unreadable(
        "header (line 1) is not valid UTF-8 (at byte 14); save the file as UTF-8"
    ),
    "job.txt": Unreadable("unknown format '.txt'; name it .jsonl, .ndjson or .csv"),
    "job.json": Unreadable("unknown format '.json'; name it .jsonl, .ndjson or .csv"),
}


def check(path: Path, expected: Rows | Unreadable) -> None:
    if isinstance(expected, Unreadable):
        with pytest.raises(JobFileError) as caught:
            read_job(path)
        assert str(caught.value).startswith(f"job file {path}")
        assert str(caught.value).endswith(expected.message)
        return
    results = list(read_job(path))
    items = [result for result in results if isinstance(result, Item)]
    invalid = {result.line: result for result in results if isinstance(result, InvalidRow)}
    assert len(invalid) == len(results) - len(items)
    assert set(invalid) == set(expected.invalid)
    for line, problem in expected.invalid.items():
        assert invalid[line].problem.startswith(problem), (line, invalid[line].problem)
        assert invalid[line].job == str(path)
        assert invalid[line].raw
    assert len(items) == expected.items


def test_every_corpus_file_has_an_expectation() -> None:
    names = {path.name for path in CORPUS.iterdir() if not path.name.startswith(".")}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name: str) -> None:
    check(CORPUS / name, EXPECTED[name])


def _oversized(name: str) -> str:
    """A GoEasy row listing one timestamp more than a row may hold."""
    stamps = [str(1581111111111 + n) for n in range(MAX_TIMESTAMPS + 1)]
    if name.endswith(".jsonl"):
        return json.dumps({"vendor": "goeasy", "op": "recall", "groupId": "g", "messages": stamps})
    cell = ";".join(stamps) if "semicolons" in name else '"[' + ",".join(stamps) + ']"'
    return "vendor,op,groupId,messages\ngoeasy,recall,g," + cell + "\n"


@pytest.mark.parametrize("name", ["list.jsonl", "semicolons.csv", "array.csv"])
def test_oversized_list(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(_oversized(name), encoding="utf-8")
    line = 1 if name.endswith(".jsonl") else 2
    problem = "field 'messages' must hold 1 to 10000 timestamps (got 10001); split the row"
    check(path, Rows(0, {line: problem}))
