"""RongCloud job rows (SPEC §2): fields, identity, targets, CSV cells, and the job `report`
writes of what is left to do."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.intake.reader import read_job
from batchrecall.models import InvalidRow, Item, Op, Vendor
from batchrecall.results.report import _RowSink, job_columns, job_row

RECALL: dict[str, Any] = {
    "vendor": "rongcloud",
    "op": "recall",
    "fromUserId": "spammer-1",
    "conversationType": 1,
    "targetId": "user-b",
    "messageUID": "5FGT-7VA9-G4DD-4V5P",
    "sentTime": 1763690000201,
}
CLEAN: dict[str, Any] = {
    "vendor": "rongcloud",
    "op": "clear_history",
    "fromUserId": "user-b",
    "conversationType": 3,
    "targetId": "group-42",
}


def _read(tmp_path: Path, *rows: dict[str, Any]) -> list[Item | InvalidRow]:
    path = tmp_path / "job.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return list(read_job(path))


def _one(tmp_path: Path, row: dict[str, Any]) -> Item:
    (item,) = _read(tmp_path, row)
    assert isinstance(item, Item), item
    return item


def _problem(tmp_path: Path, row: dict[str, Any]) -> str:
    (invalid,) = _read(tmp_path, row)
    assert isinstance(invalid, InvalidRow), invalid
    return invalid.problem


def test_a_recall_row(tmp_path: Path) -> None:
    item = _one(tmp_path, RECALL)
    assert (item.vendor, item.op, item.target) == (
        Vendor.RONGCLOUD,
        Op.RECALL,
        RECALL["messageUID"],
    )
    assert item.item_key == "rongcloud:default:recall:5FGT-7VA9-G4DD-4V5P:isDelete=0"
    assert dict(item.params) == {k: v for k, v in RECALL.items() if k not in ("vendor", "op")}


def test_optional_recall_fields_are_kept_only_when_given(tmp_path: Path) -> None:
    row = {**RECALL, "conversationType": 10, "busChannel": "c1", "isDelete": True, "isAdmin": 0,
           "extra": "spam", "disablePush": False}  # fmt: skip
    item = _one(tmp_path, row)
    assert {k: item.params[k] for k in ("busChannel", "isDelete", "isAdmin", "extra")} == {
        "busChannel": "c1",
        "isDelete": 1,
        "isAdmin": 0,
        "extra": "spam",
    }
    assert item.params["disablePush"] is False
    assert item.item_key.endswith(":isDelete=1")


def test_is_delete_makes_another_item_and_a_repeat_is_a_duplicate(tmp_path: Path) -> None:
    rows = _read(tmp_path, RECALL, {**RECALL, "isDelete": 1}, {**RECALL, "isDelete": 0})
    keys = [row.item_key for row in rows]
    assert keys[0] != keys[1]
    assert keys[0] == keys[2]


def test_a_clear_history_row(tmp_path: Path) -> None:
    item = _one(tmp_path, CLEAN)
    assert item.target == "user-b/3/group-42"
    assert item.item_key == "rongcloud:default:clear_history:user-b:3:group-42"
    before = _one(tmp_path, {**CLEAN, "msgTimestamp": 1763690000000})
    assert before.item_key == f"{item.item_key}:msgTimestamp=1763690000000"
    assert before.params["msgTimestamp"] == 1763690000000


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ({**RECALL, "messageUID": None}, "missing field 'messageUID'"),
        ({**RECALL, "sentTime": None}, "missing field 'sentTime'"),
        ({**RECALL, "conversationType": None}, "missing field 'conversationType'"),
        ({**RECALL, "conversationType": 2}, "must be one of 1, 3, 4, 6, 10"),
        ({**CLEAN, "conversationType": 10}, "must be one of 1, 3, 4, 6"),
        ({**RECALL, "sentTime": 1763690000201.0}, "float"),
        ({**RECALL, "sentTime": -1}, "'sentTime' must be a time in ms"),
        ({**RECALL, "sentTime": "yesterday"}, "'sentTime' must be a time in ms"),
        ({**CLEAN, "msgTimestamp": 0}, "'msgTimestamp' must be a time in ms"),
        ({**RECALL, "isDelete": 2}, "'isDelete' must be 0 or 1"),
        ({**RECALL, "isAdmin": "1"}, "'isAdmin' must be 0 or 1"),
        ({**RECALL, "disablePush": "yes"}, "'disablePush' must be true or false"),
        ({**RECALL, "fromUserId": ""}, "'fromUserId' must not be empty"),
        ({**RECALL, "extra": "x" * 1025}, "'extra' is longer than 1024"),
        ({**RECALL, "msg_id": "1"}, "unknown field 'msg_id'"),
        ({**CLEAN, "messageUID": "x"}, "unknown field 'messageUID'"),
        ({**RECALL, "op": "delete_conversation"}, "must be one of recall, clear_history"),
    ],
)
def test_bad_rows_are_invalid_and_say_why(tmp_path: Path, row: dict[str, Any], words: str) -> None:
    assert words in _problem(tmp_path, row)


def test_csv_cells_give_the_same_items(tmp_path: Path) -> None:
    path = tmp_path / "job.csv"
    path.write_text(
        "vendor,op,fromUserId,conversationType,targetId,messageUID,sentTime,isDelete,disablePush\n"
        "rongcloud,recall,spammer-1,1,user-b,5FGT-7VA9-G4DD-4V5P,1763690000201,yes,TRUE\n"
    )
    (item,) = list(read_job(path))
    assert isinstance(item, Item), item
    expected = _one(tmp_path, {**RECALL, "isDelete": 1, "disablePush": True})
    assert item.item_key == expected.item_key
    assert dict(item.params) == dict(expected.params)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_the_job_of_what_is_left_asks_for_the_same_items(tmp_path: Path, suffix: str) -> None:
    rows = [{**RECALL, "conversationType": 10, "busChannel": "c1", "isDelete": 1, "isAdmin": 1,
             "extra": "a, \"quoted\" note", "disablePush": True, "sent_at": 1763690000201},
            {**CLEAN, "msgTimestamp": 1763690000000, "ref": "INC-1"}]  # fmt: skip
    items = [row for row in _read(tmp_path, *rows) if isinstance(row, Item)]
    handle = io.StringIO()
    sink = _RowSink(handle, job_columns(), csv_format=suffix == ".csv")
    for item in items:
        sink.write(job_row(item))
    again = tmp_path / f"left{suffix}"
    again.write_text(handle.getvalue())
    reread = list(read_job(again))
    assert all(isinstance(row, Item) for row in reread), reread
    assert [r.item_key for r in reread] == [i.item_key for i in items]
    assert [dict(r.params) for r in reread if isinstance(r, Item)] == [
        dict(i.params) for i in items
    ]
    if suffix == ".csv":
        assert "messageUID" in next(csv.reader(io.StringIO(handle.getvalue())))
