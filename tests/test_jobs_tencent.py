"""Tencent Cloud IM job rows (SPEC §2): fields, targets, identities and batch keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.intake.reader import read_job
from batchrecall.models import InvalidRow, Item
from batchrecall.results.report import job_row

C2C: dict[str, Any] = {
    "vendor": "tencent",
    "op": "recall",
    "From_Account": "vinson",
    "To_Account": "dramon",
    "MsgKey": "31906_833502_1572869830",
}
GROUP: dict[str, Any] = {
    "vendor": "tencent",
    "op": "recall",
    "GroupId": "@TGS#2J4SZEAEL",
    "MsgSeq": [100, 101],
    "Reason": "撤回原因",
}
ONE_SIDE: dict[str, Any] = {
    "vendor": "tencent",
    "op": "delete_message",
    "Operator_Account": "user0",
    "Peer_Account": "user1",
    "MsgKey": ["1472765512_1000001_1697790495", "1085536171_2000001_1697790694"],
}
CONVERSATION: dict[str, Any] = {
    "vendor": "tencent",
    "op": "delete_conversation",
    "From_Account": "id1",
    "To_Account": "id2",
}


def read(tmp_path: Path, *rows: dict[str, Any]) -> list[Item | InvalidRow]:
    path = tmp_path / "job.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return list(read_job(path))


def items(tmp_path: Path, row: dict[str, Any]) -> list[Item]:
    found = read(tmp_path, row)
    assert all(isinstance(i, Item) for i in found), found
    return [i for i in found if isinstance(i, Item)]


def problem(tmp_path: Path, row: dict[str, Any]) -> str:
    (found,) = read(tmp_path, row)
    assert isinstance(found, InvalidRow), found
    return found.problem


def test_a_one_to_one_recall_targets_its_msgkey_and_travels_alone(tmp_path: Path) -> None:
    (item,) = items(tmp_path, C2C)
    other = items(tmp_path, {**C2C, "MsgKey": "2_2_2"})[0]
    assert item.target == "31906_833502_1572869830"
    assert item.item_key == "tencent:default:recall:vinson:dramon:31906_833502_1572869830"
    assert item.params == {k: v for k, v in C2C.items() if k not in ("vendor", "op")}
    assert item.batch_key != other.batch_key  # one MsgKey a call


def test_a_group_recall_makes_an_item_per_seq_batched_by_group_and_reason(tmp_path: Path) -> None:
    first, second = items(tmp_path, GROUP)
    assert [first.target, second.target] == ["@TGS#2J4SZEAEL#100", "@TGS#2J4SZEAEL#101"]
    assert first.batch_key == second.batch_key
    other_reason = items(tmp_path, {**GROUP, "Reason": "spam"})[0]
    no_reason = items(tmp_path, {k: v for k, v in GROUP.items() if k != "Reason"})[0]
    assert len({first.batch_key, other_reason.batch_key, no_reason.batch_key}) == 3
    # Reason is only the text shown: the same seq is the same item.
    assert first.item_key == other_reason.item_key == no_reason.item_key
    assert first.params == {"GroupId": "@TGS#2J4SZEAEL", "MsgSeq": 100, "Reason": "撤回原因"}


def test_a_one_side_delete_targets_operator_and_msgkey(tmp_path: Path) -> None:
    first, second = items(tmp_path, ONE_SIDE)
    assert first.target == "user0/1472765512_1000001_1697790495"
    assert first.batch_key == second.batch_key == ("user0", "user1")
    peer_side = items(tmp_path, {**ONE_SIDE, "Operator_Account": "user1", "Peer_Account": "user0"})
    assert peer_side[0].item_key != first.item_key  # each side is its own item


def test_a_conversation_delete_names_owner_and_peer_or_group(tmp_path: Path) -> None:
    (c2c,) = items(tmp_path, CONVERSATION)
    group_row = {"vendor": "tencent", "op": "delete_conversation", "From_Account": "id1"}
    (group,) = items(tmp_path, {**group_row, "ToGroupid": "id2"})
    assert c2c.target == group.target == "id1/id2"
    assert c2c.item_key != group.item_key
    assert c2c.params["ClearRamble"] == 0
    (cleared,) = items(tmp_path, {**CONVERSATION, "ClearRamble": 1})
    assert cleared.item_key == c2c.item_key.replace("ClearRamble=0", "ClearRamble=1")
    assert cleared.item_key != c2c.item_key  # ClearRamble is part of the identity


def test_clear_ramble_takes_0_1_and_booleans(tmp_path: Path) -> None:
    values = [items(tmp_path, {**CONVERSATION, "ClearRamble": v})[0] for v in (1, True, 0, False)]
    assert [i.params["ClearRamble"] for i in values] == [1, 1, 0, 0]
    assert "ClearRamble" in problem(tmp_path, {**CONVERSATION, "ClearRamble": 2})


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ({**C2C, "GroupId": "g1"}, "not both"),
        ({k: v for k, v in C2C.items() if k != "MsgKey"}, "'MsgKey'"),
        ({**C2C, "MsgKey": ""}, "'MsgKey'"),
        ({**C2C, "MsgKey": "a b"}, "not a MsgKey"),
        ({**GROUP, "MsgSeq": 1.5}, "'MsgSeq'"),
        ({**GROUP, "MsgSeq": [1, -2]}, "'MsgSeq[1]'"),
        ({**GROUP, "MsgSeq": []}, "1 to 10000"),
        ({**GROUP, "MsgSeq": list(range(1, 10_002))}, "1 to 10000"),
        ({k: v for k, v in GROUP.items() if k != "MsgSeq"}, "missing field 'MsgSeq'"),
        ({**ONE_SIDE, "MsgKey": ["k", 7]}, "'MsgKey[1]'"),
        ({**CONVERSATION, "ToGroupid": "g"}, "exactly one"),
        ({k: v for k, v in CONVERSATION.items() if k != "To_Account"}, "exactly one"),
        ({**CONVERSATION, "Type": 1}, "unknown field 'Type'"),
        ({**CONVERSATION, "ToGroupId": "g"}, "unknown field 'ToGroupId'"),
    ],
)
def test_rows_tencent_cannot_take_are_invalid(
    tmp_path: Path, row: dict[str, Any], words: str
) -> None:
    assert words in problem(tmp_path, row)


def test_csv_lists_and_digit_seqs(tmp_path: Path) -> None:
    path = tmp_path / "job.csv"
    path.write_text(
        "vendor,op,GroupId,MsgSeq,Operator_Account,Peer_Account,MsgKey\n"
        "tencent,recall,g1,100;101,,,\n"
        'tencent,recall,g1,"[102, 103]",,,\n'
        "tencent,delete_message,,,user0,user1,k1;k2\n",
        encoding="utf-8",
    )
    found = [i for i in read_job(path) if isinstance(i, Item)]
    assert [i.target for i in found] == [
        "g1#100",
        "g1#101",
        "g1#102",
        "g1#103",
        "user0/k1",
        "user0/k2",
    ]
    assert found[0].params["MsgSeq"] == 100


@pytest.mark.parametrize("row", [C2C, GROUP, ONE_SIDE, {**CONVERSATION, "ClearRamble": 1}])
def test_report_rebuilds_a_row_that_asks_for_exactly_each_item(
    tmp_path: Path, row: dict[str, Any]
) -> None:
    original = items(tmp_path, row)
    rebuilt = [items(tmp_path, job_row(item))[0] for item in original]
    assert [i.item_key for i in rebuilt] == [i.item_key for i in original]
    assert [dict(i.params) for i in rebuilt] == [dict(i.params) for i in original]


def test_a_csv_of_what_is_left_asks_for_exactly_the_same_items(tmp_path: Path) -> None:
    from batchrecall.results.report import _RowSink, job_columns

    rows = [C2C, GROUP, ONE_SIDE, {**CONVERSATION, "ClearRamble": 1}]
    original = [item for row in rows for item in items(tmp_path, row)]
    left = tmp_path / "left.csv"
    with left.open("w", newline="") as handle:
        sink = _RowSink(handle, job_columns(), csv_format=True)
        for item in original:
            sink.write(job_row(item))
    rebuilt = [item for item in read_job(left) if isinstance(item, Item)]
    assert [i.item_key for i in rebuilt] == [i.item_key for i in original]
    assert [dict(i.params) for i in rebuilt] == [dict(i.params) for i in original]
