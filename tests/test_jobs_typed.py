"""The typed JSONL path (intake/typed.py) and the item key against the implementation before them.

tests/legacy_schema.py is a frozen copy of the row checks and the key function as they were; every
generated JSONL line must give the same Items (every field, item_key and the order of params
too) or the same InvalidRow through `read_job` as through that copy. Rows are mostly valid rows
of every vendor and op with a few fields changed: ids with characters that need quoting or are
refused, big integers, floats, nulls, booleans as strings, unicode, unknown and repeated fields.
"""

from __future__ import annotations

import dataclasses
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchrecall.intake.reader import read_job
from batchrecall.intake.typed import typed_items
from batchrecall.models import InvalidRow, Item, make_item_key
from tests import legacy_schema

# -- the item key ------------------------------------------------------------------------------

# Characters a key quotes, keeps or joins with, and some beyond ASCII.
_KEY_CHARS = "aZ09_.~-:=%|/ \t\n\x00\x7f@+#?&é中😀\u00a0\u2028"
_key_parts = st.text(alphabet=_KEY_CHARS, max_size=8) | st.text(max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["easemob", "yunxin", "goeasy", "x:y", ""]),
    _key_parts,
    st.sampled_from(["recall", "delete_message", "a b"]),
    st.lists(_key_parts, max_size=4).map(tuple),
    st.lists(_key_parts | st.sampled_from(["force=true", "type=2", "a=b=c"]), max_size=3).map(
        tuple
    ),
)
def test_item_keys_match_the_old_key_function(
    vendor: str, app: str, op: str, ids: tuple[str, ...], options: tuple[str, ...]
) -> None:
    assert make_item_key(vendor, app, op, ids, options) == legacy_schema.make_item_key(
        vendor, app, op, ids, options
    )


# -- generated rows ----------------------------------------------------------------------------

_TEMPLATES: list[dict[str, Any]] = [
    {"vendor": "easemob", "op": "recall", "msg_id": "1028442084794698104", "to": "u2"}
    | {"chat_type": "chat"},
    {"vendor": "easemob", "op": "delete_conversation", "username": "u1", "channel": "u2"}
    | {"type": "chat", "delete_roam": True},
    {"vendor": "yunxin", "op": "recall", "conversation_id": "a|1|b", "message_server_id": "12"},
    {"vendor": "yunxin", "op": "delete_message", "conversation_id": "a|2|t"}
    | {"message_server_id": "9"},
    {"vendor": "yunxin", "op": "delete_conversation", "conversation_id": "a|2|team1"},
    {"vendor": "yunxin", "op": "clear_history", "conversation_id": "a|3|s"},
    {"vendor": "goeasy", "op": "recall", "userAId": "a", "userBId": "b", "messages": [15, 16]},
    {"vendor": "goeasy", "op": "recall", "groupId": "g", "messages": 1581111111111},
]
_OPTIONAL: dict[str, list[Any]] = {
    "easemob": ["from", "force", "sync_device", "app", "ref"],
    "yunxin": ["type", "description", "ignore_revoke_time", "clear_message", "app", "ref"],
    "goeasy": ["recaller", "app", "ref"],
}
_GOOD: dict[str, list[Any]] = {
    "from": ["u1", "a b", "é"],
    "force": [True, False, None],
    "sync_device": [True, False],
    "type": [1, 2, 3],
    "description": ["", "why", "理由"],
    "ignore_revoke_time": [True, False, 0, 1],
    "clear_message": [True, False],
    "recaller": [{"id": "u1"}, {"data": {"a": 1}}],
}
_FIELDS = sorted(
    {name for row in _TEMPLATES for name in row}
    | {name for names in _OPTIONAL.values() for name in names}
    | {"from_", "Vendor", "msgId", ""}
)
_TEXTS = [
    "",
    "a",
    "user-1_2.3~",
    "chat",
    "groupchat",
    "chatroom",
    "recall",
    "delete_message",
    "easemob",
    "yunxin",
    "goeasy",
    "default",
    "eu-prod_2",
    "true",
    "false",
    "1",
    "0",
    "yes",
    "2",
    ".",
    "..",
    "a|1|b",
    "a|2|b",
    "a|3|b",
    "a|4|b",
    "|1|b",
    "a|1|",
    "a||b",
    "..|1|c",
    "a|1|.",
    ".|2|..",
    "...|1|.b",
    "a.|2|..b",
    "a|1|b|c",
    "a@x.io|1|b+c",
    "é|1|中",
    "a b|1|c",
    "a/b|1|c",
    "a%7C|1|b",
    "a:b|2|c",
    "a\u00a0|1|b",
    "a\x85|1|b",
    "a\x1f|1|b",
    "u:1",
    "u=1",
    "a%b",
    "a/b",
    "a\\b",
    "a b",
    "\t",
    "😀",
    "0123",
    "1028442084794698104",
    "１２３",
    "1.02844E+18",
    "1028442084.0",
    "-5",
    "9" * 32,
    "9" * 33,
    "x" * 128,
    "x" * 129,
    "x" * 1024,
    "x" * 1025,
    "1" * 1025,
    "😀" * 128,
    "😀" * 129,
    "é" * 1024,
    "é" * 1025,
]
_NUMBERS = [0, 1, 2, 3, 4, -1, 2**63 - 1, 2**63, 2**64, -(2**64), 2**64 - 1, 10**30, 1.0, 1.5]
_NUMBERS += [2.0, -0.0, 1e300, 1581111111111]
_OTHERS: list[Any] = [None, True, False, [], ["a"], [1, 2], {}, {"id": "u1"}, {"data": 1}]


def _value(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.6:
        return rng.choice(_TEXTS)
    if pick < 0.85:
        return rng.choice(_NUMBERS)
    return rng.choice(_OTHERS)


def _row(rng: random.Random) -> dict[str, Any]:
    row = dict(rng.choice(_TEMPLATES))
    for name in _OPTIONAL[row["vendor"]]:
        if rng.random() < 0.2:
            row[name] = rng.choice(_GOOD.get(name, [None])) if rng.random() < 0.7 else _value(rng)
    # Mostly well-formed values for the optional fields a common row holds.
    if row["vendor"] == "easemob" and rng.random() < 0.3:
        row["force"] = rng.choice([True, False])
    if row["vendor"] == "yunxin" and rng.random() < 0.3:
        row["type"] = rng.choice([1, 2, 3])
    if rng.random() < 0.3:
        row["app"] = rng.choice(["default", "eu", "a-b_1"])
    if rng.random() < 0.2:
        row["ref"] = rng.choice(["T-1", "", 42, "工单"])
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
        pick = rng.random()
        if pick < 0.4 and row:  # one of its own fields, most often to a text
            row[rng.choice(list(row))] = rng.choice(_TEXTS) if rng.random() < 0.7 else _value(rng)
        elif pick < 0.8:
            row[rng.choice(_FIELDS)] = _value(rng)
        elif row:
            del row[rng.choice(list(row))]
    return row


def _line(rng: random.Random, row: dict[str, Any]) -> str:
    """The row as JSON text, now and then with a quirk of the text itself."""
    text = json.dumps(
        row, ensure_ascii=rng.random() < 0.5, separators=rng.choice([None, (",", ":")])
    )
    pick = rng.random()
    if pick < 0.03 and text.endswith("}") and len(text) > 2:
        name = rng.choice(["vendor", "op", "msg_id", "type", "app"])
        return text[:-1] + f', "{name}": {json.dumps(_value(rng))}}}'  # a repeated field
    if pick < 0.05:
        return text.replace('"op"', '"\\u006fp"').replace('"to"', '"t\\u006f"')
    if pick < 0.06:
        return text.replace(": 1,", ": 1e400,").replace(":1,", ":1e400,")
    if pick < 0.07:
        return text.replace(": 2,", ": 2.0,").replace(":2,", ":2.0,")
    if pick < 0.08:
        return f"  {text}\t"
    if pick < 0.09:
        return text[: rng.randrange(len(text))]
    if pick < 0.10:
        return rng.choice(["[1]", '"s"', "null", "true", "12", "{", "{}", '{"vendor":"easemob"'])
    if pick < 0.11:
        return text.replace("1028442084794698104", "10284420847946981040000000000")
    return text


def _fields(item: Item) -> dict[str, Any]:
    fields = {field.name: getattr(item, field.name) for field in dataclasses.fields(Item)}
    fields["params"] = list(item.params.items())  # order too: it is the order of the request
    return fields


def _legacy(line: str, number: int, job: str) -> list[dict[str, Any]] | InvalidRow:
    raw = line.encode("utf-8")
    result = legacy_schema.json_line(line, job=job, line=number, raw=raw)
    if isinstance(result, InvalidRow):
        return result
    return [{**fields, "params": list(fields["params"].items())} for fields in result]


def _compare(lines: list[str]) -> int:
    """Read `lines` as a job file and through the legacy copy; how many the typed path took."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job.jsonl"
        path.write_bytes("".join(f"{line}\n" for line in lines).encode("utf-8"))
        by_line: dict[int, list[Item | InvalidRow]] = {}
        for result in read_job(path, job_name="job"):
            by_line.setdefault(result.line, []).append(result)
    typed = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        got = by_line.pop(number)
        expected = _legacy(line, number, "job")
        if isinstance(expected, InvalidRow):
            assert got == [expected], line
        else:
            assert all(isinstance(item, Item) for item in got), (line, got)
            assert [_fields(item) for item in got if isinstance(item, Item)] == expected, line
        typed += typed_items(line, job="job", line=number) is not None
    assert not by_line
    return typed


def test_many_generated_rows_give_what_they_gave_before() -> None:
    rng = random.Random(20_260_312)
    lines = [_line(rng, _row(rng)) for _ in range(12_000)]
    typed = _compare(lines)
    # The comparison means something only if the typed path took a good share of the rows.
    assert typed > 1_500


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=40))
def test_generated_rows_give_what_they_gave_before(rng: random.Random, n: int) -> None:
    _compare([_line(rng, _row(rng)) for _ in range(n)])


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(_TEXTS),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=120, deadline=None)
@given(
    st.sampled_from(_TEMPLATES),
    st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=6), _json_values, max_size=3),
)
def test_rows_with_any_json_values_give_what_they_gave_before(
    template: dict[str, Any], changes: dict[str, Any]
) -> None:
    _compare([json.dumps({**template, **changes}, ensure_ascii=False)])


def test_the_common_rows_take_the_typed_path() -> None:
    """Each op of Easemob and Yunxin has its typed form; GoEasy rows take the careful path."""
    for template in _TEMPLATES:
        items = typed_items(json.dumps(template), job="job", line=1)
        assert (items is None) == (template["vendor"] == "goeasy"), template
