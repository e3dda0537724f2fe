"""Field rules of job rows (SPEC §2), checked through JSONL files read by read_job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.intake.reader import read_job
from batchrecall.models import InvalidRow, Item, Op, Vendor

EASEMOB_RECALL: dict[str, Any] = {
    "vendor": "easemob",
    "op": "recall",
    "msg_id": "1028442084794698104",
    "to": "user2",
    "chat_type": "chat",
}
EASEMOB_DELETE: dict[str, Any] = {
    "vendor": "easemob",
    "op": "delete_conversation",
    "username": "user1",
    "channel": "user2",
    "type": "chat",
    "delete_roam": True,
}
GOEASY_PRIVATE: dict[str, Any] = {
    "vendor": "goeasy",
    "op": "recall",
    "userAId": "user001",
    "userBId": "user002",
    "messages": [1581111111111, 1582222222222],
}
GOEASY_GROUP: dict[str, Any] = {
    "vendor": "goeasy",
    "op": "recall",
    "groupId": "g1",
    "messages": 1581111111111,
}
YUNXIN_RECALL: dict[str, Any] = {
    "vendor": "yunxin",
    "op": "recall",
    "conversation_id": "alice|1|bob",
    "message_server_id": "123456789",
}
YUNXIN_DELETE_MESSAGE = {**YUNXIN_RECALL, "op": "delete_message"}
YUNXIN_DELETE_CONVERSATION: dict[str, Any] = {
    "vendor": "yunxin",
    "op": "delete_conversation",
    "conversation_id": "alice|2|team1",
}
YUNXIN_CLEAR = {**YUNXIN_DELETE_CONVERSATION, "op": "clear_history"}


def read_rows(tmp_path: Path, *rows: dict[str, Any]) -> list[Item | InvalidRow]:
    path = tmp_path / "job.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return list(read_job(path))


def read_line(tmp_path: Path, line: str) -> list[Item | InvalidRow]:
    path = tmp_path / "job.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    return list(read_job(path))


def items(tmp_path: Path, row: dict[str, Any]) -> list[Item]:
    results = read_rows(tmp_path, row)
    assert all(isinstance(result, Item) for result in results), results
    return [result for result in results if isinstance(result, Item)]


def item(tmp_path: Path, row: dict[str, Any]) -> Item:
    (only,) = items(tmp_path, row)
    return only


def invalid(tmp_path: Path, row: dict[str, Any]) -> InvalidRow:
    (result,) = read_rows(tmp_path, row)
    assert isinstance(result, InvalidRow), result
    return result


def problem(tmp_path: Path, row: dict[str, Any]) -> str:
    return invalid(tmp_path, row).problem


def without(row: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != name}


# Common fields


def test_app_defaults_and_ref_is_empty(tmp_path: Path) -> None:
    result = item(tmp_path, EASEMOB_RECALL)
    assert (result.app, result.ref, result.job, result.line, result.index) == (
        "default",
        "",
        str(tmp_path / "job.jsonl"),
        1,
        0,
    )


def test_app_and_ref_are_kept(tmp_path: Path) -> None:
    result = item(tmp_path, {**EASEMOB_RECALL, "app": "eu-prod_2", "ref": " INC-42 "})
    assert (result.app, result.ref) == ("eu-prod_2", " INC-42 ")


@pytest.mark.parametrize(("ref", "expected"), [(42, "42"), (1.5, "1.5"), ("", "")])
def test_ref_number_is_taken_as_text(tmp_path: Path, ref: object, expected: str) -> None:
    assert item(tmp_path, {**EASEMOB_RECALL, "ref": ref}).ref == expected


def test_ref_must_be_text(tmp_path: Path) -> None:
    assert problem(tmp_path, {**EASEMOB_RECALL, "ref": ["a"]}) == (
        "field 'ref' must be a string (got a list)"
    )


@pytest.mark.parametrize("app", ["", "a b", "x/y", "prod.eu", "é"])
def test_app_name_characters(tmp_path: Path, app: str) -> None:
    assert problem(tmp_path, {**EASEMOB_RECALL, "app": app}) == (
        f"field 'app' must be letters, digits, '_' or '-' (got {app!r})"
    )


def test_app_must_be_a_string(tmp_path: Path) -> None:
    assert "field 'app' must be a string" in problem(tmp_path, {**EASEMOB_RECALL, "app": 1})


def test_missing_vendor(tmp_path: Path) -> None:
    assert problem(tmp_path, without(EASEMOB_RECALL, "vendor")) == "missing field 'vendor'"


@pytest.mark.parametrize("vendor", ["wechat", "Easemob", ""])
def test_unknown_vendor(tmp_path: Path, vendor: str) -> None:
    row = invalid(tmp_path, {**EASEMOB_RECALL, "vendor": vendor})
    assert row.problem == (
        "field 'vendor' must be one of easemob, goeasy, rongcloud, tencent, yunxin "
        f"(got {vendor!r})"
    )
    assert (row.vendor, row.op, row.app) == (vendor, "recall", "default")


def test_missing_op(tmp_path: Path) -> None:
    assert problem(tmp_path, without(EASEMOB_RECALL, "op")) == "missing field 'op'"


@pytest.mark.parametrize(
    ("vendor", "op", "ops"),
    [
        ("easemob", "delete_message", "recall, delete_conversation"),
        ("easemob", "clear_history", "recall, delete_conversation"),
        ("goeasy", "delete_conversation", "recall"),
        ("yunxin", "send", "recall, delete_message, delete_conversation, clear_history"),
    ],
)
def test_op_the_vendor_lacks(tmp_path: Path, vendor: str, op: str, ops: str) -> None:
    row = invalid(tmp_path, {"vendor": vendor, "op": op})
    assert row.problem == f"field 'op' must be one of {ops} for {vendor} (got {op!r})"
    assert (row.vendor, row.op) == (vendor, op)


def test_unknown_field(tmp_path: Path) -> None:
    assert problem(tmp_path, {**EASEMOB_RECALL, "forse": True}) == (
        "unknown field 'forse': easemob recall takes msg_id, to, chat_type, from, force, "
        "sync_device"
    )


def test_unknown_fields_are_all_named(tmp_path: Path) -> None:
    text = problem(tmp_path, {**YUNXIN_CLEAR, "a": 1, "b": 2})
    assert text.startswith("unknown fields 'a', 'b': yunxin clear_history takes")


def test_another_ops_field_is_unknown(tmp_path: Path) -> None:
    assert problem(tmp_path, {**YUNXIN_DELETE_MESSAGE, "type": 1}).startswith(
        "unknown field 'type': yunxin delete_message takes"
    )


def test_null_is_an_absent_field(tmp_path: Path) -> None:
    result = item(tmp_path, {**EASEMOB_RECALL, "from": None, "forse": None, "app": None})
    assert result.app == "default"
    assert "from" not in result.params


def test_null_required_field_is_missing(tmp_path: Path) -> None:
    assert problem(tmp_path, {**EASEMOB_RECALL, "to": None}) == "missing field 'to'"


def test_invalid_row_carries_the_row_as_given(tmp_path: Path) -> None:
    row = invalid(tmp_path, {**EASEMOB_RECALL, "app": "eu", "ref": "T-1", "chat_type": "x"})
    assert (row.job, row.line, row.ref, row.vendor, row.app, row.op) == (
        str(tmp_path / "job.jsonl"),
        1,
        "T-1",
        "easemob",
        "eu",
        "recall",
    )
    assert row.raw == orjson.dumps({**EASEMOB_RECALL, "app": "eu", "ref": "T-1", "chat_type": "x"})


def test_string_fields_have_a_length_limit(tmp_path: Path) -> None:
    assert item(tmp_path, {**EASEMOB_RECALL, "to": "u" * 1024}).params["to"] == "u" * 1024
    assert problem(tmp_path, {**EASEMOB_RECALL, "to": "u" * 1025}) == (
        "field 'to' is longer than 1024 characters"
    )
    assert problem(tmp_path, {**EASEMOB_RECALL, "ref": "r" * 1025}) == (
        "field 'ref' is longer than 1024 characters"
    )


# Easemob recall


def test_easemob_recall_minimal(tmp_path: Path) -> None:
    result = item(tmp_path, EASEMOB_RECALL)
    assert (result.vendor, result.op) == (Vendor.EASEMOB, Op.RECALL)
    assert result.target == "1028442084794698104"
    assert result.ids == ("1028442084794698104",)
    assert result.options == ("force=false",)
    assert result.batch_key == ("force=false",)  # a batch never names one message twice
    assert result.params == {
        "msg_id": "1028442084794698104",
        "to": "user2",
        "chat_type": "chat",
        "force": False,
    }


def test_easemob_recall_full(tmp_path: Path) -> None:
    row = {**EASEMOB_RECALL, "chat_type": "chatroom", "from": "user1", "force": True}
    result = item(tmp_path, {**row, "sync_device": False})
    assert result.params == {
        "msg_id": "1028442084794698104",
        "to": "user2",
        "chat_type": "chatroom",
        "force": True,
        "from": "user1",
        "sync_device": False,
    }


def test_easemob_recall_integer_ids(tmp_path: Path) -> None:
    result = item(tmp_path, {**EASEMOB_RECALL, "msg_id": 1028442084794698104, "to": 42})
    assert result.params["msg_id"] == "1028442084794698104"
    assert result.params["to"] == "42"


def test_big_integer_id_stays_exact(tmp_path: Path) -> None:
    (result,) = read_line(
        tmp_path,
        '{"vendor":"easemob","op":"recall","to":"u","chat_type":"chat",'
        '"msg_id":12345678901234567890123456789012}',
    )
    assert isinstance(result, Item)
    assert result.target == "12345678901234567890123456789012"


@pytest.mark.parametrize("value", ["1.0284420847946981e18", "12.0", "1e3"])
def test_float_id_is_invalid(tmp_path: Path, value: str) -> None:
    (result,) = read_line(
        tmp_path,
        f'{{"vendor":"easemob","op":"recall","to":"u","chat_type":"chat","msg_id":{value}}}',
    )
    assert isinstance(result, InvalidRow)
    assert result.problem == (
        "field 'msg_id' is a float and may have lost digits; write it as a string"
    )


@pytest.mark.parametrize("msg_id", ["12a", "-5", " 12", "12 ", "１２", "1" * 33, "", "+1"])
def test_msg_id_must_be_digits(tmp_path: Path, msg_id: str) -> None:
    text = problem(tmp_path, {**EASEMOB_RECALL, "msg_id": msg_id})
    assert text.startswith("field 'msg_id' must")


def test_msg_id_as_float_text_lost_digits(tmp_path: Path) -> None:
    assert problem(tmp_path, {**EASEMOB_RECALL, "msg_id": "1.02844E+18"}) == (
        "field 'msg_id' was written as a float ('1.02844E+18') and may have lost digits; "
        "store the column as text"
    )


def test_msg_id_of_32_digits(tmp_path: Path) -> None:
    assert item(tmp_path, {**EASEMOB_RECALL, "msg_id": "9" * 32}).target == "9" * 32


def test_msg_id_boolean_is_not_a_number(tmp_path: Path) -> None:
    assert problem(tmp_path, {**EASEMOB_RECALL, "msg_id": True}) == (
        "field 'msg_id' must be a string (got true)"
    )


@pytest.mark.parametrize("name", ["msg_id", "to", "chat_type"])
def test_easemob_recall_required(tmp_path: Path, name: str) -> None:
    assert problem(tmp_path, without(EASEMOB_RECALL, name)) == f"missing field '{name}'"


def test_chat_type_choices(tmp_path: Path) -> None:
    assert problem(tmp_path, {**EASEMOB_RECALL, "chat_type": "group"}) == (
        "field 'chat_type' must be one of chat, groupchat, chatroom (got 'group')"
    )


@pytest.mark.parametrize("name", ["to", "from"])
def test_empty_recipient_or_sender(tmp_path: Path, name: str) -> None:
    assert problem(tmp_path, {**EASEMOB_RECALL, name: ""}) == f"field '{name}' must not be empty"


@pytest.mark.parametrize("value", ["true", 1, "yes"])
def test_json_booleans_must_be_real(tmp_path: Path, value: object) -> None:
    assert problem(tmp_path, {**EASEMOB_RECALL, "force": value}).startswith(
        "field 'force' must be true or false (got"
    )


# Easemob delete_conversation


def test_easemob_delete_conversation(tmp_path: Path) -> None:
    result = item(tmp_path, {**EASEMOB_DELETE, "channel": "group/1", "delete_roam": False})
    assert result.target == "user1/group/1"
    assert result.ids == ("user1", "group/1", "chat")
    assert result.batch_key == ("user1",)
    assert result.params == {
        "username": "user1",
        "channel": "group/1",
        "type": "chat",
        "delete_roam": False,
    }


@pytest.mark.parametrize("name", ["username", "channel", "type", "delete_roam"])
def test_easemob_delete_conversation_required(tmp_path: Path, name: str) -> None:
    assert problem(tmp_path, without(EASEMOB_DELETE, name)) == f"missing field '{name}'"


def test_easemob_delete_conversation_type(tmp_path: Path) -> None:
    assert problem(tmp_path, {**EASEMOB_DELETE, "type": "chatroom"}) == (
        "field 'type' must be one of chat, groupchat (got 'chatroom')"
    )


@pytest.mark.parametrize(
    ("username", "what"),
    [
        ("../x", "'/'"),
        ("a/b", "'/'"),
        ("%2F", "'%'"),
        ("a\\b", "'\\\\'"),
        (" a", "whitespace"),
        ("a\tb", "whitespace"),
        ("a\u3000b", "whitespace"),
        ("a\x00b", "a control character"),
        ("a\x7f", "a control character"),
    ],
)
def test_username_must_stay_in_its_url_segment(tmp_path: Path, username: str, what: str) -> None:
    assert problem(tmp_path, {**EASEMOB_DELETE, "username": username}).startswith(
        f"field 'username' must not contain {what}: it goes into a URL"
    )


@pytest.mark.parametrize("username", [".", ".."])
def test_username_dot_segments(tmp_path: Path, username: str) -> None:
    assert problem(tmp_path, {**EASEMOB_DELETE, "username": username}) == (
        "field 'username' must not be '.' or '..': it goes into a URL path"
    )


# GoEasy recall


def test_goeasy_private_items(tmp_path: Path) -> None:
    first, second = items(tmp_path, GOEASY_PRIVATE)
    assert (first.index, first.target, second.index, second.target) == (
        0,
        "1581111111111",
        1,
        "1582222222222",
    )
    assert first.ids == ("private", "user001", "user002", "1581111111111")
    assert first.batch_key == ("private", "user001", "user002", "")
    assert first.params == {"userAId": "user001", "userBId": "user002", "timestamp": 1581111111111}


def test_goeasy_private_order_does_not_matter(tmp_path: Path) -> None:
    swapped = {**GOEASY_PRIVATE, "userAId": "user002", "userBId": "user001"}
    first, _ = items(tmp_path, swapped)
    assert first.ids == ("private", "user001", "user002", "1581111111111")
    assert first.batch_key == ("private", "user001", "user002", "")
    assert (first.params["userAId"], first.params["userBId"]) == ("user002", "user001")


def test_goeasy_group_single_timestamp(tmp_path: Path) -> None:
    result = item(tmp_path, GOEASY_GROUP)
    assert (result.index, result.target) == (0, "1581111111111")
    assert result.ids == ("group", "g1", "1581111111111")
    assert result.batch_key == ("group", "g1", "")
    assert result.params == {"groupId": "g1", "timestamp": 1581111111111}


@pytest.mark.parametrize("messages", ["1581111111111", ["1581111111111"], [1581111111111]])
def test_goeasy_timestamp_forms(tmp_path: Path, messages: object) -> None:
    result = item(tmp_path, {**GOEASY_GROUP, "messages": messages})
    assert result.params["timestamp"] == 1581111111111


def test_goeasy_recaller(tmp_path: Path) -> None:
    recaller = {"id": "user001", "data": {"name": "Wallace", "avatar": "/a.png"}}
    first, second = items(tmp_path, {**GOEASY_PRIVATE, "recaller": recaller})
    key = '{"data":{"avatar":"/a.png","name":"Wallace"},"id":"user001"}'
    assert first.batch_key == second.batch_key == ("private", "user001", "user002", key)
    assert first.params["recaller"] == recaller


def test_goeasy_duplicate_timestamp_in_a_row(tmp_path: Path) -> None:
    first, second = items(tmp_path, {**GOEASY_GROUP, "messages": [5, 5]})
    assert first.ids == second.ids
    assert (first.index, second.index) == (0, 1)


def test_goeasy_both_conversation_kinds(tmp_path: Path) -> None:
    assert problem(tmp_path, {**GOEASY_PRIVATE, "groupId": "g1"}) == (
        "give either 'groupId' or 'userAId' and 'userBId', not both"
    )


def test_goeasy_no_conversation(tmp_path: Path) -> None:
    assert problem(tmp_path, without(GOEASY_GROUP, "groupId")) == (
        "missing field 'groupId' (or 'userAId' and 'userBId' for a private chat)"
    )


def test_goeasy_half_a_pair(tmp_path: Path) -> None:
    assert problem(tmp_path, without(GOEASY_PRIVATE, "userBId")) == "missing field 'userBId'"
    assert problem(tmp_path, without(GOEASY_PRIVATE, "userAId")) == "missing field 'userAId'"


def test_goeasy_messages_required(tmp_path: Path) -> None:
    assert problem(tmp_path, without(GOEASY_GROUP, "messages")) == "missing field 'messages'"


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([], "field 'messages' must hold 1 to 10000 timestamps (got 0); split the row"),
        (
            [1, 0],
            "field 'messages[1]' must be a positive integer timestamp in ms (got 0)",
        ),
        (-1, "field 'messages' must be a positive integer timestamp in ms (got -1)"),
        (True, "field 'messages' must be a positive integer timestamp in ms (got true)"),
        ("abc", "field 'messages' must be a positive integer timestamp in ms (got 'abc')"),
        ("1;2", "field 'messages' must be a positive integer timestamp in ms (got '1;2')"),
        ([[1]], "field 'messages[0]' must be a positive integer timestamp in ms (got a list)"),
        (2**63, f"field 'messages' must be a positive integer timestamp in ms (got {2**63})"),
    ],
)
def test_goeasy_bad_messages(tmp_path: Path, messages: object, expected: str) -> None:
    assert problem(tmp_path, {**GOEASY_GROUP, "messages": messages}) == expected


@pytest.mark.parametrize(
    ("messages", "name"), [("1581111111111.0", "messages"), ("[1, 2.5]", "messages[1]")]
)
def test_goeasy_float_timestamp(tmp_path: Path, messages: str, name: str) -> None:
    (result,) = read_line(
        tmp_path, f'{{"vendor":"goeasy","op":"recall","groupId":"g","messages":{messages}}}'
    )
    assert isinstance(result, InvalidRow)
    assert result.problem == (
        f"field '{name}' is a float and may have lost digits; write it as a string"
    )


def test_goeasy_list_limit(tmp_path: Path) -> None:
    stamps = list(range(1, 10_001))
    assert len(items(tmp_path, {**GOEASY_GROUP, "messages": stamps})) == 10_000
    assert problem(tmp_path, {**GOEASY_GROUP, "messages": [*stamps, 10_001]}) == (
        "field 'messages' must hold 1 to 10000 timestamps (got 10001); split the row"
    )


@pytest.mark.parametrize(
    ("recaller", "expected"),
    [
        ("user1", "field 'recaller' must be an object (got 'user1')"),
        ({"id": "u", "name": "n"}, "field 'recaller' may hold only id and data (got 'name')"),
        ({"id": 7}, "field 'recaller.id' must be a string (got 7)"),
        ({"data": [1]}, "field 'recaller.data' must be a string or an object (got a list)"),
    ],
)
def test_goeasy_bad_recaller(tmp_path: Path, recaller: object, expected: str) -> None:
    assert problem(tmp_path, {**GOEASY_GROUP, "recaller": recaller}) == expected


def test_goeasy_recaller_with_an_unsendable_number(tmp_path: Path) -> None:
    (result,) = read_line(
        tmp_path,
        '{"vendor":"goeasy","op":"recall","groupId":"g","messages":1,'
        '"recaller":{"data":{"n":123456789012345678901234567890}}}',
    )
    assert isinstance(result, InvalidRow)
    assert result.problem.startswith("field 'recaller' cannot be sent as JSON")


def test_goeasy_integer_ids(tmp_path: Path) -> None:
    result = item(tmp_path, {**GOEASY_GROUP, "groupId": 12})
    assert result.ids == ("group", "12", "1581111111111")


# Yunxin


def test_yunxin_recall_defaults(tmp_path: Path) -> None:
    result = item(tmp_path, YUNXIN_RECALL)
    assert (result.vendor, result.op) == (Vendor.YUNXIN, Op.RECALL)
    assert result.target == "123456789"
    assert result.ids == ("alice|1|bob", "123456789")
    assert result.batch_key == ()
    assert result.params == {
        "conversation_id": "alice|1|bob",
        "message_server_id": "123456789",
        "type": 2,
    }


def test_yunxin_recall_full(tmp_path: Path) -> None:
    row = {**YUNXIN_RECALL, "type": "1", "description": "spam", "ignore_revoke_time": True}
    assert item(tmp_path, row).params == {
        "conversation_id": "alice|1|bob",
        "message_server_id": "123456789",
        "type": 1,
        "description": "spam",
        "ignore_revoke_time": 1,
    }


@pytest.mark.parametrize(("value", "expected"), [(True, 1), (False, 0), (1, 1), (0, 0)])
def test_yunxin_ignore_revoke_time(tmp_path: Path, value: object, expected: int) -> None:
    result = item(tmp_path, {**YUNXIN_RECALL, "ignore_revoke_time": value})
    assert result.params["ignore_revoke_time"] == expected


@pytest.mark.parametrize("value", [2, "1", "true"])
def test_yunxin_bad_ignore_revoke_time(tmp_path: Path, value: object) -> None:
    assert problem(tmp_path, {**YUNXIN_RECALL, "ignore_revoke_time": value}).startswith(
        "field 'ignore_revoke_time' must be true, false, 0 or 1 (got"
    )


@pytest.mark.parametrize("value", [3, "3", 0, "x", True])
def test_yunxin_recall_type(tmp_path: Path, value: object) -> None:
    assert problem(tmp_path, {**YUNXIN_RECALL, "type": value}).startswith(
        "field 'type' must be one of 1, 2 (got"
    )


def test_yunxin_recall_type_float(tmp_path: Path) -> None:
    (result,) = read_line(
        tmp_path,
        '{"vendor":"yunxin","op":"recall","conversation_id":"a|1|b",'
        '"message_server_id":"1","type":2.0}',
    )
    assert isinstance(result, InvalidRow)
    assert result.problem == "field 'type' must be one of 1, 2 (got 2.0)"


def test_yunxin_description_limit(tmp_path: Path) -> None:
    assert item(tmp_path, {**YUNXIN_RECALL, "description": "d" * 128}).params["description"]
    assert problem(tmp_path, {**YUNXIN_RECALL, "description": "d" * 129}) == (
        "field 'description' is longer than 128 characters"
    )


@pytest.mark.parametrize("name", ["conversation_id", "message_server_id"])
def test_yunxin_required(tmp_path: Path, name: str) -> None:
    assert problem(tmp_path, without(YUNXIN_RECALL, name)) == f"missing field '{name}'"


@pytest.mark.parametrize("conversation_id", ["a|1|b", "a|2|b", "a|3|b", "中文|1|b.c"])
def test_yunxin_conversation_id_forms(tmp_path: Path, conversation_id: str) -> None:
    result = item(tmp_path, {**YUNXIN_RECALL, "conversation_id": conversation_id})
    assert result.ids[0] == conversation_id


@pytest.mark.parametrize("conversation_id", ["a|4|b", "a|1", "|1|b", "a|1|", "a|1|b|c", "ab"])
def test_yunxin_conversation_id_shape(tmp_path: Path, conversation_id: str) -> None:
    assert problem(tmp_path, {**YUNXIN_RECALL, "conversation_id": conversation_id}) == (
        "field 'conversation_id' must be sender|type|receiver with type 1, 2 or 3 "
        f"(got {conversation_id!r})"
    )


@pytest.mark.parametrize(
    "conversation_id", ["a/b|1|c", "a|1|%2F", "..\\x|1|c", "a b|1|c", "a|1|c\n", "a|1|b\x1b"]
)
def test_yunxin_conversation_id_must_stay_in_the_url(tmp_path: Path, conversation_id: str) -> None:
    text = problem(tmp_path, {**YUNXIN_RECALL, "conversation_id": conversation_id})
    assert text.startswith("field 'conversation_id' must not contain ")
    assert ": it goes into a URL" in text


@pytest.mark.parametrize("conversation_id", ["..|1|c", "a|1|.", ".|2|.."])
def test_yunxin_conversation_id_dot_parts(tmp_path: Path, conversation_id: str) -> None:
    assert problem(tmp_path, {**YUNXIN_RECALL, "conversation_id": conversation_id}) == (
        "field 'conversation_id' must not have '.' or '..' as sender or receiver: "
        "it goes into a URL path"
    )


@pytest.mark.parametrize("message_server_id", ["%2F", "../1", "1 ", "abc"])
def test_yunxin_message_server_id_digits(tmp_path: Path, message_server_id: str) -> None:
    assert problem(tmp_path, {**YUNXIN_RECALL, "message_server_id": message_server_id}) == (
        f"field 'message_server_id' must be 1 to 32 digits (got {message_server_id!r})"
    )


def test_yunxin_message_server_id_integer(tmp_path: Path) -> None:
    assert item(tmp_path, {**YUNXIN_RECALL, "message_server_id": 77}).target == "77"


def test_yunxin_delete_message(tmp_path: Path) -> None:
    result = item(tmp_path, {**YUNXIN_DELETE_MESSAGE, "description": "cleanup"})
    assert (result.op, result.target) == (Op.DELETE_MESSAGE, "123456789")
    assert result.ids == ("alice|1|bob", "123456789")
    assert result.params == {
        "conversation_id": "alice|1|bob",
        "message_server_id": "123456789",
        "type": 3,
        "description": "cleanup",
    }


def test_yunxin_delete_message_takes_no_revoke_flag(tmp_path: Path) -> None:
    text = problem(tmp_path, {**YUNXIN_DELETE_MESSAGE, "ignore_revoke_time": True})
    assert text.startswith("unknown field 'ignore_revoke_time'")


@pytest.mark.parametrize(("clear", "key"), [(None, "false"), (False, "false"), (True, "true")])
def test_yunxin_delete_conversation(tmp_path: Path, clear: bool | None, key: str) -> None:
    result = item(tmp_path, {**YUNXIN_DELETE_CONVERSATION, "clear_message": clear})
    assert result.target == "alice|2|team1"
    assert result.ids == ("alice|2|team1",)
    assert result.batch_key == (f"clear_message={key}",)
    assert result.params == {"conversation_id": "alice|2|team1", "clear_message": bool(clear)}


def test_yunxin_delete_conversation_flag_type(tmp_path: Path) -> None:
    assert problem(tmp_path, {**YUNXIN_DELETE_CONVERSATION, "clear_message": "no"}) == (
        "field 'clear_message' must be true or false (got 'no')"
    )


@pytest.mark.parametrize(("value", "expected"), [(None, 3), (1, 1), (2, 2), ("3", 3)])
def test_yunxin_clear_history(tmp_path: Path, value: object, expected: int) -> None:
    result = item(tmp_path, {**YUNXIN_CLEAR, "type": value})
    assert (result.op, result.target, result.ids, result.batch_key) == (
        Op.CLEAR_HISTORY,
        "alice|2|team1",
        ("alice|2|team1",),
        (),
    )
    assert result.params == {"conversation_id": "alice|2|team1", "type": expected}


def test_yunxin_clear_history_type(tmp_path: Path) -> None:
    assert problem(tmp_path, {**YUNXIN_CLEAR, "type": 4}) == (
        "field 'type' must be one of 1, 2, 3 (got 4)"
    )


def test_item_keys_do_not_depend_on_the_line(tmp_path: Path) -> None:
    first, second = read_rows(tmp_path, YUNXIN_RECALL, YUNXIN_RECALL)
    assert isinstance(first, Item)
    assert isinstance(second, Item)
    assert (first.line, second.line) == (1, 2)
    assert first.item_key == second.item_key


# Identity: the options that change what the vendor does (SPEC §2)


@pytest.mark.parametrize(
    ("row", "field", "first", "second"),
    [
        (YUNXIN_RECALL, "type", 1, 2),
        (YUNXIN_CLEAR, "type", 1, 3),
        (YUNXIN_DELETE_CONVERSATION, "clear_message", False, True),
        (EASEMOB_DELETE, "delete_roam", False, True),
        (EASEMOB_RECALL, "force", False, True),
    ],
    ids=["yunxin-recall-type", "clear-history-type", "clear-message", "delete-roam", "force"],
)
def test_other_options_make_another_item(
    tmp_path: Path, row: dict[str, Any], field: str, first: object, second: object
) -> None:
    one, other, again = read_rows(
        tmp_path, {**row, field: first}, {**row, field: second}, {**row, field: first}
    )
    assert isinstance(one, Item)
    assert isinstance(other, Item)
    assert isinstance(again, Item)
    assert (one.target, one.ids) == (other.target, other.ids)
    assert one.item_key != other.item_key
    assert one.item_key == again.item_key


def test_defaults_are_part_of_the_identity(tmp_path: Path) -> None:
    """An option left out is its default: the same item as the row that writes it out."""
    pairs = [
        (YUNXIN_RECALL, {**YUNXIN_RECALL, "type": 2}),
        (YUNXIN_CLEAR, {**YUNXIN_CLEAR, "type": 3}),
        (YUNXIN_DELETE_CONVERSATION, {**YUNXIN_DELETE_CONVERSATION, "clear_message": False}),
        (EASEMOB_RECALL, {**EASEMOB_RECALL, "force": False}),
    ]
    for short, written in pairs:
        first, second = read_rows(tmp_path, short, written)
        assert first.item_key == second.item_key


def test_options_that_do_not_change_the_outcome_stay_out_of_the_identity(tmp_path: Path) -> None:
    first, second = read_rows(
        tmp_path, YUNXIN_RECALL, {**YUNXIN_RECALL, "description": "spam", "ref": "T-2"}
    )
    assert first.item_key == second.item_key


def test_item_key_names_the_options(tmp_path: Path) -> None:
    assert item(tmp_path, {**YUNXIN_RECALL, "type": 1}).item_key == (
        "yunxin:default:recall:alice%7C1%7Cbob:123456789:type=1"
    )
    assert item(tmp_path, EASEMOB_DELETE).item_key == (
        "easemob:default:delete_conversation:user1:user2:chat:delete_roam=true"
    )
    assert item(tmp_path, YUNXIN_DELETE_MESSAGE).item_key == (
        "yunxin:default:delete_message:alice%7C1%7Cbob:123456789"
    )


# Yunxin super teams (seed 003): one-way recall and delete take P2P and advanced teams only


def test_one_way_recall_of_a_super_team_message_is_invalid(tmp_path: Path) -> None:
    row = {**YUNXIN_RECALL, "conversation_id": "alice|3|big", "type": 1}
    assert problem(tmp_path, row) == (
        "field 'conversation_id' names a super team (type 3, got 'alice|3|big'): Yunxin's "
        "recall type 1 (one-way) takes one-to-one and advanced team messages only; recall it "
        "with type 2"
    )


def test_delete_message_of_a_super_team_is_invalid(tmp_path: Path) -> None:
    row = {**YUNXIN_DELETE_MESSAGE, "conversation_id": "alice|3|big"}
    assert problem(tmp_path, row).startswith(
        "field 'conversation_id' names a super team (type 3, got 'alice|3|big'): Yunxin's "
        "delete_message takes"
    )


@pytest.mark.parametrize("conversation_id", ["alice|1|bob", "alice|2|team"])
def test_one_way_recall_and_delete_of_p2p_and_teams(tmp_path: Path, conversation_id: str) -> None:
    item(tmp_path, {**YUNXIN_RECALL, "conversation_id": conversation_id, "type": 1})
    item(tmp_path, {**YUNXIN_DELETE_MESSAGE, "conversation_id": conversation_id})


def test_two_way_recall_of_a_super_team_message(tmp_path: Path) -> None:
    result = item(tmp_path, {**YUNXIN_RECALL, "conversation_id": "alice|3|big"})
    assert result.params["type"] == 2


def test_sent_at_is_informational(tmp_path: Path) -> None:
    """`sent_at` (ms since the epoch) is accepted on every op, kept on the item, never part of
    its identity and never a vendor parameter."""
    base = {"vendor": "easemob", "op": "recall", "msg_id": "1100000000000000001", "to": "u",
            "chat_type": "chat"}  # fmt: skip
    rows = [
        base | {"sent_at": 1_764_754_800_000},
        base | {"sent_at": 1_764_754_900_000},  # the same message: a duplicate
        {"vendor": "yunxin", "op": "clear_history", "conversation_id": "a|1|b", "sent_at": 5},
        {"vendor": "goeasy", "op": "recall", "groupId": "g", "messages": [7, 8], "sent_at": 6},
    ]
    path = tmp_path / "job.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    items = list(read_job(path))
    assert all(isinstance(item, Item) for item in items)
    easemob, again, yunxin, *goeasy = (item for item in items if isinstance(item, Item))
    assert (easemob.sent_at, again.sent_at, yunxin.sent_at) == (
        1_764_754_800_000,
        1_764_754_900_000,
        5,
    )
    assert [item.sent_at for item in goeasy] == [6, 6]
    assert (
        easemob.item_key
        == again.item_key
        == "easemob:default:recall:1100000000000000001:force=false"
    )
    assert "sent_at" not in easemob.params


@pytest.mark.parametrize("value", [1.5, -3, 0, True, "soon", "12x", "5", 10**16])
def test_a_bad_sent_at_is_an_invalid_row(tmp_path: Path, value: object) -> None:
    row = {"vendor": "yunxin", "op": "clear_history", "conversation_id": "a|1|b", "sent_at": value}
    path = tmp_path / "job.jsonl"
    path.write_bytes(orjson.dumps(row) + b"\n")
    (invalid,) = read_job(path)
    assert isinstance(invalid, InvalidRow)
    assert "sent_at" in invalid.problem
