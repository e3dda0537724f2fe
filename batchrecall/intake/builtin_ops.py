"""The built-in vendors' job rows (SPEC §2): each op's fields read into its targets.

The catalog's registrations name these builders (`OpSpec.build`); the generic part of the
schema (common fields, unknown fields, identity options) is intake/schema.py's.
"""

from __future__ import annotations

from typing import Any

import orjson

from batchrecall.intake.fields import MAX_TEXT, RowError, RowFields, show
from batchrecall.intake.targets import Target, option
from batchrecall.models import Item

MAX_DESCRIPTION = 128
# Yunxin (seed 003): recall type 1 (one-way) and type 3 (delete) take one-to-one and advanced
# team messages only; a super team's (conversation type 3) only a two-way recall.
_ONE_WAY, _DELETE, _SUPER_TEAM = 1, 3, "3"
_MAX_RECALLER_JSON = 4 * MAX_TEXT


def easemob_recall(row: RowFields) -> list[Target]:
    msg_id = row.digits("msg_id")
    force = row.optional_flag("force") or False
    params: dict[str, Any] = {
        "msg_id": msg_id,
        "to": row.ident("to"),
        "chat_type": row.choice("chat_type", ("chat", "groupchat", "chatroom")),
        # Easemob: `force` is required in the newest docs, so it is always sent.
        "force": force,
    }
    sender = row.optional_ident("from")
    if sender is not None:
        params["from"] = sender
    sync_device = row.optional_flag("sync_device")
    if sync_device is not None:
        params["sync_device"] = sync_device
    # One call never names a message twice: a batch answer is read by msg_id.
    return [Target(msg_id, (msg_id,), params, batch_key=(option("force", force),))]


def easemob_delete_conversation(row: RowFields) -> list[Target]:
    username = row.url_ident("username")
    channel = row.ident("channel")
    chat_type = row.choice("type", ("chat", "groupchat"))
    delete_roam = row.flag("delete_roam")
    params: dict[str, Any] = {
        "username": username,
        "channel": channel,
        "type": chat_type,
        "delete_roam": delete_roam,
    }
    ids = (username, channel, chat_type)
    return [Target(f"{username}/{channel}", ids, params, batch_key=(username,))]


def goeasy_recall(row: RowFields) -> list[Target]:
    conversation, parties = _goeasy_conversation(row)
    stamps = row.timestamps("messages")
    recaller = _goeasy_recaller(row)
    recaller_key = "" if recaller is None else _canonical_json("recaller", recaller)
    batch_key = (*conversation, recaller_key)
    targets = []
    for stamp in stamps:
        params: dict[str, Any] = {**parties, "timestamp": stamp}
        if recaller is not None:
            params["recaller"] = recaller
        targets.append(Target(str(stamp), (*conversation, str(stamp)), params, batch_key))
    return targets


def _goeasy_conversation(row: RowFields) -> tuple[tuple[str, ...], dict[str, str]]:
    """The conversation identity and its request fields: a group, or a private pair."""
    private = row.has("userAId") or row.has("userBId")
    if row.has("groupId"):
        if private:
            raise RowError("give either 'groupId' or 'userAId' and 'userBId', not both")
        group = row.ident("groupId")
        return ("group", group), {"groupId": group}
    if not private:
        raise RowError("missing field 'groupId' (or 'userAId' and 'userBId' for a private chat)")
    user_a = row.ident("userAId")
    user_b = row.ident("userBId")
    # GoEasy does not tell the two parties apart, so either order names one conversation.
    identity = ("private", min(user_a, user_b), max(user_a, user_b))
    return identity, {"userAId": user_a, "userBId": user_b}


def _goeasy_recaller(row: RowFields) -> dict[str, Any] | None:
    """`recaller`: at most `id` (a string) and `data` (a string or an object)."""
    recaller = row.optional_object("recaller")
    if recaller is None:
        return None
    extra = [key for key in recaller if key not in ("id", "data")]
    if extra:
        raise RowError(f"field 'recaller' may hold only id and data (got {show(extra[0])})")
    if "id" in recaller and not isinstance(recaller["id"], str):
        raise RowError(f"field 'recaller.id' must be a string (got {show(recaller['id'])})")
    if "data" in recaller and not isinstance(recaller["data"], str | dict):
        raise RowError(
            f"field 'recaller.data' must be a string or an object (got {show(recaller['data'])})"
        )
    return recaller


def _canonical_json(name: str, value: dict[str, Any]) -> str:
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        raise RowError(f"field {show(name)} cannot be sent as JSON ({exc})") from None
    if len(text) > _MAX_RECALLER_JSON:
        raise RowError(f"field {show(name)} is longer than {_MAX_RECALLER_JSON} characters")
    return text


def _yunxin_conversation_id(row: RowFields) -> str:
    """`sender|type|receiver`, type 1, 2 or 3; it goes into the URL path."""
    value = row.url_ident("conversation_id")
    parts = value.split("|")
    if len(parts) != 3 or parts[1] not in ("1", "2", "3") or not parts[0] or not parts[2]:
        raise RowError(
            "field 'conversation_id' must be sender|type|receiver with type 1, 2 or 3 "
            f"(got {show(value)})"
        )
    if {parts[0], parts[2]} & {".", ".."}:
        raise RowError(
            "field 'conversation_id' must not have '.' or '..' as sender or receiver: "
            "it goes into a URL path"
        )
    return value


def _yunxin_message(row: RowFields, *, message_type: int) -> list[Target]:
    conversation_id = _yunxin_conversation_id(row)
    if message_type in (_ONE_WAY, _DELETE) and conversation_id.split("|")[1] == _SUPER_TEAM:
        what, fix = (
            ("recall type 1 (one-way)", "; recall it with type 2")
            if message_type == _ONE_WAY
            else ("delete_message", "")
        )
        raise RowError(
            f"field 'conversation_id' names a super team (type 3, got {show(conversation_id)}): "
            f"Yunxin's {what} takes one-to-one and advanced team messages only{fix}"
        )
    message_id = row.digits("message_server_id")
    params: dict[str, Any] = {
        "conversation_id": conversation_id,
        "message_server_id": message_id,
        "type": message_type,
    }
    description = row.optional_text("description", max_len=MAX_DESCRIPTION)
    if description is not None:
        params["description"] = description
    # Seed 003, a query parameter of the recall/delete endpoint (default true): sent only when
    # given. Not in the identity: it lifts a permission check, the recall is the same.
    check_member = row.optional_flag("check_team_member_valid")
    if check_member is not None:
        params["check_team_member_valid"] = check_member
    # delete_message is its own op (no identity option): only a recall's type changes what the
    # vendor does to it.
    return [Target(message_id, (conversation_id, message_id), params)]


def yunxin_recall(row: RowFields) -> list[Target]:
    targets = _yunxin_message(row, message_type=row.small_int("type", (1, 2), default=2))
    ignore = _ignore_revoke_time(row)
    if ignore is not None:
        targets[0].params["ignore_revoke_time"] = ignore
    return targets


def _ignore_revoke_time(row: RowFields) -> int | None:
    """Yunxin takes 0/1 here; a row may say it as a boolean or as 0/1."""
    value = row.get("ignore_revoke_time")
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return value
    try:
        flag = row.optional_flag("ignore_revoke_time")
    except RowError:
        raise RowError(
            f"field 'ignore_revoke_time' must be true, false, 0 or 1 (got {show(value)})"
        ) from None
    return None if flag is None else int(flag)


def yunxin_delete_message(row: RowFields) -> list[Target]:
    # Yunxin's one-way delete is the withdraw endpoint with type=3.
    return _yunxin_message(row, message_type=3)


def yunxin_delete_conversation(row: RowFields) -> list[Target]:
    conversation_id = _yunxin_conversation_id(row)
    clear_message = row.optional_flag("clear_message") or False
    params: dict[str, Any] = {"conversation_id": conversation_id, "clear_message": clear_message}
    return [
        Target(
            conversation_id,
            (conversation_id,),
            params,
            batch_key=(option("clear_message", clear_message),),
        )
    ]


def yunxin_clear_history(row: RowFields) -> list[Target]:
    conversation_id = _yunxin_conversation_id(row)
    kind = row.small_int("type", (1, 2, 3), default=3)
    params: dict[str, Any] = {"conversation_id": conversation_id, "type": kind}
    return [Target(conversation_id, (conversation_id,), params)]


def goeasy_row(item: Item) -> dict[str, Any]:
    """A GoEasy row names its messages as a list of timestamps."""
    params = dict(item.params)
    params["messages"] = [params.pop("timestamp")]
    return params


def yunxin_delete_message_row(item: Item) -> dict[str, Any]:
    """A Yunxin delete_message row takes no `type`: the op is the withdraw endpoint's type 3."""
    params = dict(item.params)
    params.pop("type", None)
    return params
