"""The job row checks as they were before the typed fast path: a frozen copy, for comparison.

tests/test_jobs_typed.py reads generated rows through it and through the product, and asks for the
same Items (every field, item_key too) and the same invalid-row problems. Do not edit it to
follow the product: it is the reference the product must keep agreeing with. It changes only
where the job schema itself changes on purpose (a new field), by the same rule as the product.
"""

# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from batchrecall.models import InvalidRow, Op, Vendor

_NEEDS_NO_QUOTING = re.compile(r"[A-Za-z0-9_.~-]*\Z")


def _quoted(part: str, safe: str = "") -> str:
    return part if _NEEDS_NO_QUOTING.match(part) else quote(part, safe=safe)


def make_item_key(
    vendor: str, app: str, op: str, ids: tuple[str, ...], options: tuple[str, ...] = ()
) -> str:
    """A stable identity: vendor, app, op, the target ids and the options that change what the
    vendor does (SPEC §2), each percent-encoded; an option reads `name=value`."""
    parts = [_quoted(part) for part in (vendor, app, op, *ids)]
    parts += [_quoted(option, safe="=") for option in options]
    return ":".join(parts)


def _legacy_item(**fields: Any) -> dict[str, Any]:
    """An Item's fields, its key made by the legacy key function."""
    fields["item_key"] = make_item_key(
        fields["vendor"], fields["app"], fields["op"], fields["ids"], fields["options"]
    )
    return fields


# -- batchrecall/intake/fields.py --------------------------------------------------------------

MAX_TEXT = 1024
MAX_TIMESTAMPS = 10_000
_MAX_DIGITS = 32
_INT64_MAX = 2**63 - 1

_DIGITS = re.compile(r"[0-9]+")
# What a spreadsheet makes of a long number it stored as a float: 1.02844E+18, 1028442084.0
_FLOAT_TEXT = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")
_URL_UNSAFE = re.compile(r"[/\\%\s\x00-\x1f\x7f-\x9f]")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class RowError(Exception):
    """A problem with one row: a sentence naming the field and how to fix it."""


def parse_json(text: str) -> Any:
    """Parse JSON with orjson, keeping integer literals beyond 64 bits exact.

    orjson turns such integers into floats (or fails on them past the double range), so those
    texts are parsed again with the standard library, which reads integer literals exactly.
    Raises ValueError (orjson.JSONDecodeError for malformed JSON) or RecursionError.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "infinity" not in exc.msg:
            raise
        return json.loads(text, parse_float=_finite_float)
    if _holds_float(value):
        return json.loads(text, parse_float=_finite_float)
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _holds_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class RowFields:
    """A row's present fields. Getters without `optional_` raise when the field is missing."""

    def __init__(self, fields: Mapping[str, Any], *, from_csv: bool) -> None:
        self._fields = {name: value for name, value in fields.items() if value is not None}
        self._from_csv = from_csv

    def names(self) -> list[str]:
        return list(self._fields)

    def get(self, name: str) -> Any:
        return self._fields.get(name)

    def has(self, name: str) -> bool:
        return name in self._fields

    def _required(self, name: str) -> Any:
        if name not in self._fields:
            raise RowError(f"missing field {show(name)}")
        return self._fields[name]

    def text(self, name: str) -> str:
        return _as_text(name, self._required(name))

    def optional_text(self, name: str, *, max_len: int = MAX_TEXT) -> str | None:
        """Any string, the empty one too, up to `max_len` characters."""
        value = self.get(name)
        return None if value is None else _as_text(name, value, max_len)

    def ref(self) -> str:
        """`ref` is free text; a JSON number is taken as its text."""
        value = self.get("ref")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return self.optional_text("ref") or ""

    def ident(self, name: str) -> str:
        return _as_ident(name, self._required(name))

    def optional_ident(self, name: str) -> str | None:
        value = self.get(name)
        return None if value is None else _as_ident(name, value)

    def url_ident(self, name: str) -> str:
        """An id that goes into a URL path or query (SPEC §2 forbids what could escape it)."""
        value = self.ident(name)
        bad = _URL_UNSAFE.search(value)
        if bad:
            raise RowError(
                f"field {show(name)} must not contain {_describe_char(bad.group())}: it goes "
                f"into a URL (got {show(value)})"
            )
        if value in (".", ".."):
            raise RowError(f"field {show(name)} must not be '.' or '..': it goes into a URL path")
        return value

    def digits(self, name: str) -> str:
        """A numeric id (`msg_id`, `message_server_id`) of 1 to 32 ASCII digits."""
        value = self.ident(name)
        if _DIGITS.fullmatch(value) and len(value) <= _MAX_DIGITS:
            return value
        if _FLOAT_TEXT.fullmatch(value) and not _DIGITS.fullmatch(value):
            raise RowError(
                f"field {show(name)} was written as a float ({show(value)}) and may have "
                "lost digits; store the column as text"
            )
        raise RowError(f"field {show(name)} must be 1 to {_MAX_DIGITS} digits (got {show(value)})")

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self.text(name)
        if value not in options:
            raise RowError(
                f"field {show(name)} must be one of {', '.join(options)} (got {show(value)})"
            )
        return value

    def flag(self, name: str) -> bool:
        return self._as_flag(name, self._required(name))

    def optional_flag(self, name: str) -> bool | None:
        value = self.get(name)
        return None if value is None else self._as_flag(name, value)

    def _as_flag(self, name: str, value: Any) -> bool:
        """A boolean: JSON true/false; in CSV true/false/1/0/yes/no in any case."""
        if isinstance(value, bool):
            return value
        if self._from_csv and isinstance(value, str):
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise RowError(f"field {show(name)} must be true/false/1/0/yes/no (got {show(value)})")
        raise RowError(f"field {show(name)} must be true or false (got {show(value)})")

    def small_int(self, name: str, options: tuple[int, ...], *, default: int) -> int:
        """An optional enumerated integer (Yunxin `type`): a JSON integer or a digit string."""
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, str) and _DIGITS.fullmatch(value) and len(value) < 4:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value in options:
            return value
        allowed = ", ".join(str(option) for option in options)
        raise RowError(f"field {show(name)} must be one of {allowed} (got {show(value)})")

    def timestamps(self, name: str) -> list[int]:
        """GoEasy `messages`: one timestamp (ms) or a list of 1 to 10,000 of them."""
        value = self._required(name)
        if self._from_csv and isinstance(value, str):
            value = _csv_list(name, value)
        if not isinstance(value, list):
            return [_as_timestamp(name, value)]
        if not 1 <= len(value) <= MAX_TIMESTAMPS:
            raise RowError(
                f"field {show(name)} must hold 1 to {MAX_TIMESTAMPS} timestamps "
                f"(got {len(value)}); split the row"
            )
        return [_as_timestamp(f"{name}[{index}]", entry) for index, entry in enumerate(value)]

    def optional_object(self, name: str) -> dict[str, Any] | None:
        """A JSON object; in CSV, its JSON text."""
        value = self.get(name)
        if value is None:
            return None
        if self._from_csv and isinstance(value, str):
            value = _cell_json(name, value, 'write a JSON object such as {"id": "u1"}')
        if not isinstance(value, dict):
            raise RowError(f"field {show(name)} must be an object (got {show(value)})")
        return value


def _as_text(name: str, value: Any, max_len: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise RowError(f"field {show(name)} must be a string (got {show(value)})")
    if len(value) > max_len:
        raise RowError(f"field {show(name)} is longer than {max_len} characters")
    return value


def _as_ident(name: str, value: Any) -> str:
    """A non-empty id, kept exactly as written; a JSON integer is taken as its digits."""
    if isinstance(value, float):
        raise RowError(_float_problem(name))
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _as_text(name, value)
    if not text:
        raise RowError(f"field {show(name)} must not be empty")
    return text


def _as_timestamp(name: str, value: Any) -> int:
    """A message timestamp in ms: a positive 64-bit integer, as a JSON integer or digits."""
    if isinstance(value, float):
        raise RowError(_float_problem(name))
    if isinstance(value, str) and _DIGITS.fullmatch(value) and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _INT64_MAX:
        return value
    raise RowError(
        f"field {show(name)} must be a positive integer timestamp in ms (got {show(value)})"
    )


def _csv_list(name: str, text: str) -> Any:
    """A CSV list cell: a JSON array, values separated by ';' (spaces around them allowed), or
    one value."""
    if text.lstrip().startswith("["):
        return _cell_json(name, text, "write a JSON array or values separated by ';'")
    if ";" in text:
        return [part.strip() for part in text.split(";")]
    return text


def _cell_json(name: str, text: str, hint: str) -> Any:
    """A CSV cell holding JSON text."""
    try:
        return parse_json(text)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise RowError(f"field {show(name)} is not valid JSON ({reason}); {hint}") from None


def _describe_char(char: str) -> str:
    if char.isspace():
        return "whitespace"
    if char in "/\\%":
        return repr(char)
    return "a control character"


def _float_problem(name: str) -> str:
    return f"field {show(name)} is a float and may have lost digits; write it as a string"


def show(value: Any) -> str:
    """A short rendering of a row value for a problem sentence."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# -- batchrecall/intake/schema.py --------------------------------------------------------------

_COMMON_FIELDS = ("vendor", "op", "app", "ref", "sent_at")
_APP_NAME = re.compile(r"[A-Za-z0-9_-]+")
_MAX_DESCRIPTION = 128
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
        sent_at = row.get("sent_at")
        if from_csv and isinstance(sent_at, str) and sent_at.isascii() and sent_at.isdigit():
            sent_at = int(sent_at)
        if sent_at is not None and (
            isinstance(sent_at, bool) or not isinstance(sent_at, int) or not 0 < sent_at < 10**16
        ):
            raise RowError(
                f"field 'sent_at' must be a time in ms since the epoch, a positive integer "
                f"(got {show(sent_at)})"
            )
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
        _legacy_item(
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
    vendor = Vendor(row.choice("vendor", ("easemob", "goeasy", "rongcloud", "tencent", "yunxin")))
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
    elif not _APP_NAME.fullmatch(app):
        raise RowError(f"field 'app' must be letters, digits, '_' or '-' (got {show(app)})")
    return vendor, op, app, row.ref()


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
    description = row.optional_text("description", max_len=_MAX_DESCRIPTION)
    if description is not None:
        params["description"] = description
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
}


# -- batchrecall/intake/reader.py: the JSONL row -----------------------------------------------


def _json_fields(text: str) -> dict[str, Any] | str:
    """A JSONL line's object, or the problem with it."""
    try:
        value = parse_json(text)
    except orjson.JSONDecodeError as exc:
        return f"line is not valid JSON: {exc.msg} (column {exc.colno})"
    except (ValueError, RecursionError) as exc:
        return f"line cannot be read as JSON ({exc})"
    if not isinstance(value, dict):
        return f"line must be a JSON object {{...}} (got {_json_kind(value)})"
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def json_line(text: str, *, job: str, line: int, raw: bytes) -> list[dict[str, Any]] | InvalidRow:
    """A JSONL line (decoded text) as the reader made it: its Items' fields, or its InvalidRow."""
    fields = _json_fields(text)
    if isinstance(fields, str):
        return invalid_row(job=job, line=line, raw=raw, problem=fields)
    return items_from_row(fields, from_csv=False, job=job, line=line, raw=raw)
