"""The job row schema (SPEC §2): which fields each vendor and op takes, and the Items they make.

Every problem becomes one InvalidRow whose sentence names the field and says how to fix it; a row
is used whole or not at all. A field no schema names is refused: the tool never sends what was
not asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from batchrecall.intake import rongcloud_rows, tencent_rows
from batchrecall.intake.fields import APP_NAME, MAX_TEXT, RowError, RowFields, show
from batchrecall.models import InvalidRow, Item, Op, Vendor

# `sent_at` (ms since the epoch) is the operator's, or `collect`'s, note of when a message was
# sent: never sent to a vendor, not part of the identity; plan and run count the items it shows
# to be past their lane's recall window.
_COMMON_FIELDS = ("vendor", "op", "app", "ref", "sent_at")
MAX_SENT_AT = 10**16
MAX_DESCRIPTION = 128
# Yunxin (seed 003): recall type 1 (one-way) and type 3 (delete) take one-to-one and advanced
# team messages only; a super team's (conversation type 3) only a two-way recall.
_ONE_WAY, _DELETE, _SUPER_TEAM = 1, 3, "3"
_MAX_RECALLER_JSON = 4 * MAX_TEXT


def items_from_row(
    fields: Mapping[str, Any], *, from_csv: bool, job: str, line: int, raw: bytes
) -> list[Item] | InvalidRow:
    """Validate one parsed row into its Items (several for a GoEasy list), or one InvalidRow."""
    row = RowFields(fields, from_csv=from_csv)
    try:
        vendor, op, app, ref = _common(row)
        sent_at = _sent_at(row, from_csv=from_csv)
        targets = _SCHEMAS[vendor, op].build(row)
    except RowError as exc:
        return invalid_row(
            job=job,
            line=line,
            raw=raw,
            problem=str(exc),
            ref=_as_given(row.get("ref")),
            vendor=_as_given(row.get("vendor")),
            app="default" if row.get("app") is None else _as_given(row.get("app")),
            op=_as_given(row.get("op")),
        )
    return [
        Item(
            job=job,
            line=line,
            index=index,
            ref=ref,
            vendor=vendor,
            app=app,
            op=op,
            target=target.target,
            ids=target.ids,
            options=target.options,
            batch_key=target.batch_key,
            params=target.params,
            sent_at=sent_at,
        )
        for index, target in enumerate(targets)
    ]


def invalid_row(
    *,
    job: str,
    line: int,
    raw: bytes,
    problem: str,
    ref: str = "",
    vendor: str = "",
    app: str = "",
    op: str = "",
) -> InvalidRow:
    """An InvalidRow; the row's own fields stay empty where it could not be parsed."""
    return InvalidRow(
        job=job, line=line, ref=ref, vendor=vendor, app=app, op=op, problem=problem, raw=raw
    )


def _as_given(value: Any) -> str:
    """A common field as the row gave it, for an invalid row: its text, a number, or empty."""
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


@dataclass(frozen=True, slots=True)
class _Target:
    """One item's vendor-specific part."""

    target: str
    ids: tuple[str, ...]
    params: dict[str, Any]
    batch_key: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def _option(name: str, value: bool | int) -> str:
    """An option of the item's identity, as `name=value` (booleans as true/false)."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"{name}={text}"


@dataclass(frozen=True, slots=True)
class _OpSchema:
    fields: tuple[str, ...]
    build: Callable[[RowFields], list[_Target]]


def _common(row: RowFields) -> tuple[Vendor, Op, str, str]:
    """The common fields, once the row holds no field its vendor and op do not take."""
    vendor = Vendor(row.choice("vendor", tuple(Vendor)))
    op_name = row.text("op")
    ops = tuple(op for (v, op) in _SCHEMAS if v is vendor)
    if op_name not in ops:
        raise RowError(
            f"field 'op' must be one of {', '.join(ops)} for {vendor} (got {show(op_name)})"
        )
    op = Op(op_name)
    schema = _SCHEMAS[vendor, op]
    unknown = [name for name in row.names() if name not in (*_COMMON_FIELDS, *schema.fields)]
    if unknown:
        names = ", ".join(show(name) for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise RowError(
            f"unknown field{plural} {names}: {vendor} {op} takes {', '.join(schema.fields)}"
        )
    app = row.optional_text("app")
    if app is None:
        app = "default"
    elif not APP_NAME.fullmatch(app):
        raise RowError(f"field 'app' must be letters, digits, '_' or '-' (got {show(app)})")
    return vendor, op, app, row.ref()


def _sent_at(row: RowFields, *, from_csv: bool) -> int | None:
    """`sent_at`: ms since the epoch, a JSON integer (digits in CSV), before the year 2286."""
    value = row.get("sent_at")
    if value is None:
        return None
    if from_csv and isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_SENT_AT:
        raise RowError(
            f"field 'sent_at' must be a time in ms since the epoch, a positive integer "
            f"(got {show(value)})"
        )
    return value


def _easemob_recall(row: RowFields) -> list[_Target]:
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
    options = (_option("force", force),)
    # One call never names a message twice: a batch answer is read by msg_id.
    return [_Target(msg_id, (msg_id,), params, batch_key=options, options=options)]


def _easemob_delete_conversation(row: RowFields) -> list[_Target]:
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
    options = (_option("delete_roam", delete_roam),)
    return [_Target(f"{username}/{channel}", ids, params, batch_key=(username,), options=options)]


def _goeasy_recall(row: RowFields) -> list[_Target]:
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
        targets.append(_Target(str(stamp), (*conversation, str(stamp)), params, batch_key))
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


def _yunxin_message(row: RowFields, *, message_type: int) -> list[_Target]:
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
    # delete_message is its own op; only a recall's type changes what the vendor does to it.
    options = (_option("type", message_type),) if message_type != _DELETE else ()
    return [_Target(message_id, (conversation_id, message_id), params, options=options)]


def _yunxin_recall(row: RowFields) -> list[_Target]:
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


def _yunxin_delete_message(row: RowFields) -> list[_Target]:
    # Yunxin's one-way delete is the withdraw endpoint with type=3.
    return _yunxin_message(row, message_type=3)


def _yunxin_delete_conversation(row: RowFields) -> list[_Target]:
    conversation_id = _yunxin_conversation_id(row)
    clear_message = row.optional_flag("clear_message") or False
    params: dict[str, Any] = {"conversation_id": conversation_id, "clear_message": clear_message}
    options = (_option("clear_message", clear_message),)
    return [
        _Target(conversation_id, (conversation_id,), params, batch_key=options, options=options)
    ]


def _yunxin_clear_history(row: RowFields) -> list[_Target]:
    conversation_id = _yunxin_conversation_id(row)
    kind = row.small_int("type", (1, 2, 3), default=3)
    params: dict[str, Any] = {"conversation_id": conversation_id, "type": kind}
    options = (_option("type", kind),)
    return [_Target(conversation_id, (conversation_id,), params, options=options)]


def _one_target(
    build: Callable[[RowFields], rongcloud_rows.RowTarget],
) -> Callable[[RowFields], list[_Target]]:
    """A vendor module's one-item row builder, as a schema's."""

    def targets(row: RowFields) -> list[_Target]:
        made = build(row)
        return [_Target(made.target, made.ids, made.params, options=made.options)]

    return targets


def _from_parts(
    build: Callable[[RowFields], list[tencent_rows.Parts]],
) -> Callable[[RowFields], list[_Target]]:
    """A builder of a vendor's own module, whose items come as `Parts` tuples."""
    return lambda row: [_Target(*parts) for parts in build(row)]


_SCHEMAS: dict[tuple[Vendor, Op], _OpSchema] = {
    (Vendor.EASEMOB, Op.RECALL): _OpSchema(
        ("msg_id", "to", "chat_type", "from", "force", "sync_device"), _easemob_recall
    ),
    (Vendor.EASEMOB, Op.DELETE_CONVERSATION): _OpSchema(
        ("username", "channel", "type", "delete_roam"), _easemob_delete_conversation
    ),
    (Vendor.GOEASY, Op.RECALL): _OpSchema(
        ("userAId", "userBId", "groupId", "messages", "recaller"), _goeasy_recall
    ),
    (Vendor.YUNXIN, Op.RECALL): _OpSchema(
        (
            "conversation_id",
            "message_server_id",
            "type",
            "description",
            "ignore_revoke_time",
            "check_team_member_valid",
        ),
        _yunxin_recall,
    ),
    (Vendor.YUNXIN, Op.DELETE_MESSAGE): _OpSchema(
        ("conversation_id", "message_server_id", "description", "check_team_member_valid"),
        _yunxin_delete_message,
    ),
    (Vendor.YUNXIN, Op.DELETE_CONVERSATION): _OpSchema(
        ("conversation_id", "clear_message"), _yunxin_delete_conversation
    ),
    (Vendor.YUNXIN, Op.CLEAR_HISTORY): _OpSchema(
        ("conversation_id", "type"), _yunxin_clear_history
    ),
    (Vendor.TENCENT, Op.RECALL): _OpSchema(
        tencent_rows.RECALL_FIELDS, _from_parts(tencent_rows.recall)
    ),
    (Vendor.TENCENT, Op.DELETE_MESSAGE): _OpSchema(
        tencent_rows.DELETE_MESSAGE_FIELDS, _from_parts(tencent_rows.delete_message)
    ),
    (Vendor.TENCENT, Op.DELETE_CONVERSATION): _OpSchema(
        tencent_rows.DELETE_CONVERSATION_FIELDS, _from_parts(tencent_rows.delete_conversation)
    ),
    (Vendor.RONGCLOUD, Op.RECALL): _OpSchema(
        rongcloud_rows.RECALL_FIELDS, _one_target(rongcloud_rows.recall)
    ),
    (Vendor.RONGCLOUD, Op.CLEAR_HISTORY): _OpSchema(
        rongcloud_rows.CLEAR_HISTORY_FIELDS, _one_target(rongcloud_rows.clear_history)
    ),
}
