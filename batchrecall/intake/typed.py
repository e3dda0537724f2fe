"""The common valid JSONL row, decoded by msgspec straight into a struct tagged by its vendor.

The structs declare each field's type and form (lengths, digits, URL-safe ids, choices), which
msgspec checks as it decodes; a row that passes them and the few checks left here becomes its
Items at once, keys made by joins. Any other row (None) takes the careful way, `items_from_row`,
which alone words the problems, so no message depends on this path. The two must agree on every
row this one takes: tests/test_jobs_typed.py compares them on generated rows. Only Easemob and
Yunxin rows come this way; a GoEasy row (a list of timestamps) spreads the careful path's cost
over its items.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from batchrecall.intake.fields import APP_CHARS, MAX_TEXT, URL_UNSAFE_CHARS
from batchrecall.intake.schema import MAX_DESCRIPTION, MAX_SENT_AT
from batchrecall.models import Item, Op, Vendor, keyed_item, make_item_key

__all__ = ["typed_block_keys", "typed_items", "typed_key"]

# The forms of RowFields' getters (intake/fields.py), as msgspec constraints; a pattern is
# searched, so each is anchored at both ends.
_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
_Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
# Digits, checked after decoding: a pattern here costs a call into `re` for every row.
_Digits = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
_App = Annotated[str, msgspec.Meta(pattern=rf"^[{APP_CHARS}]{{1,{MAX_TEXT}}}\Z")]
_UrlIdent = Annotated[str, msgspec.Meta(max_length=MAX_TEXT, pattern=rf"^[^{URL_UNSAFE_CHARS}]+\Z")]
# Yunxin `sender|type|receiver`, type 1, 2 or 3; it goes into the URL, so neither party may be
# '.' or '..'.
_PARTY = rf"(?!\.\.?(?:\||\Z))[^|{URL_UNSAFE_CHARS}]+"
_CONVERSATION = re.compile(rf"{_PARTY}\|[123]\|{_PARTY}")
# A conversation id whose only character an item key quotes is '|' (as %7C).
_PLAIN_PARTY = r"(?!\.\.?(?:\||\Z))[A-Za-z0-9_.~-]+"
_PLAIN_CONVERSATION = re.compile(rf"{_PLAIN_PARTY}\|[123]\|{_PLAIN_PARTY}")
# Checked by `_conversation_key`, after decoding, for the same reason as `_Digits`.
_ConversationId = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
_Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION)]
# A JSON integer only: a `sent_at` written as digits takes the careful path.
_SentAt = Annotated[int, msgspec.Meta(gt=0, lt=MAX_SENT_AT)]
# A JSON integer `ref` is kept as its digits; one past 64 bits takes the careful path.
_MAX_REF_INT = 2**64

_FORCE = {True: ("force=true",), False: ("force=false",)}
_DELETE_ROAM = {True: ("delete_roam=true",), False: ("delete_roam=false",)}
_CLEAR_MESSAGE = {True: ("clear_message=true",), False: ("clear_message=false",)}
_TYPE: dict[int, tuple[str, ...]] = {kind: (f"type={kind}",) for kind in (1, 2, 3)}
# The tail of a key for each option, and the ops, looked up once (an enum member's lookup costs
# a call a row).
_FORCE_TAIL = {force: f":{options[0]}" for force, options in _FORCE.items()}
_TYPE_TAIL = {kind: f":{options[0]}" for kind, options in _TYPE.items()}
_RECALL = Op.RECALL
_DELETE_MESSAGE = Op.DELETE_MESSAGE


def typed_items(text: str | bytes, *, job: str, line: int) -> list[Item] | None:
    """The Items of a common valid JSONL row; None for any row the careful path must read."""
    try:
        row: _Easemob | _Yunxin = _DECODER.decode(text)
    except msgspec.DecodeError:  # malformed JSON, another vendor, a field not of its form
        return None
    items = row.items(job, line)
    if items is not None and row.sent_at is not None:
        for item in items:
            item.sent_at = row.sent_at
    return items


def typed_key(text: str | bytes) -> str | None:
    """The item key of a common valid JSONL row, by the checks `typed_items` makes, without
    making the Item (what `validate` counts); None for any row the careful path must read."""
    try:
        row: _Easemob | _Yunxin = _DECODER.decode(text)
    except msgspec.DecodeError:
        return None
    shape = row.shape()
    return None if shape is None else shape[4]


def typed_block_keys(lines: list[bytes], longest: int) -> tuple[list[str], list[int]]:
    """`typed_key` over a block of lines at once: the keys of its common valid rows, and the
    indexes of the lines left to the careful path (every line longer than `longest` too)."""
    keys: list[str] = []
    rest: list[int] = []
    decode = _DECODER.decode
    for index, raw in enumerate(lines):
        try:
            shape = decode(raw).shape() if len(raw) <= longest else None
        except msgspec.DecodeError:
            shape = None
        if shape is None:
            rest.append(index)
        else:
            keys.append(shape[4])
    return keys, rest


def _ref(ref: str | int | None) -> str | None:
    if ref is None:
        return ""
    if isinstance(ref, int):
        return str(ref) if -_MAX_REF_INT < ref < _MAX_REF_INT else None
    return ref


_Shape = tuple[str, str, Op, tuple[str, ...], str]
"""What a typed row asks for, once its checks passed: one item, its app, ref, op, options and
key (a plain tuple: a NamedTuple's constructor is a Python call a row)."""


class _Easemob(
    msgspec.Struct, tag_field="vendor", tag="easemob", forbid_unknown_fields=True, gc=False
):
    """The fields of both Easemob ops; JSON null is an absent field, as on the careful path."""

    op: Literal["recall", "delete_conversation"] | None = None
    app: _App | None = None
    ref: _Text | int | None = None
    sent_at: _SentAt | None = None
    msg_id: _Digits | None = None
    to: _Ident | None = None
    chat_type: Literal["chat", "groupchat", "chatroom"] | None = None
    sender: _Ident | None = msgspec.field(name="from", default=None)
    force: bool | None = None
    sync_device: bool | None = None
    username: _UrlIdent | None = None
    channel: _Ident | None = None
    type: Literal["chat", "groupchat"] | None = None
    delete_roam: bool | None = None

    def shape(self) -> _Shape | None:
        ref = "" if self.ref is None else self.ref if isinstance(self.ref, str) else _ref(self.ref)
        if ref is None:
            return None
        app = "default" if self.app is None else self.app
        if self.op == "recall":  # the common row, so its checks are written in line
            msg_id = self.msg_id
            if (
                msg_id is None
                or not (msg_id.isdigit() and msg_id.isascii())
                or self.to is None
                or self.chat_type is None
                or self.username is not None
                or self.channel is not None
                or self.type is not None
                or self.delete_roam is not None
            ):
                return None
            force = self.force or False
            # Every part is plain: the app's letters, digits, '_' and '-', the digits of msg_id.
            key = f"easemob:{app}:recall:{msg_id}{_FORCE_TAIL[force]}"
            return (app, ref, _RECALL, _FORCE[force], key)
        if self.op == "delete_conversation":
            return self._delete_conversation_shape(app, ref)
        return None

    def items(self, job: str, line: int) -> list[Item] | None:
        shape = self.shape()
        if shape is None:
            return None
        if shape[2] is Op.RECALL:
            return [self._recall(job, line, shape)]
        return [self._delete_conversation(job, line, shape)]

    def _recall(self, job: str, line: int, shape: _Shape) -> Item:
        msg_id = self.msg_id
        assert msg_id is not None
        params: dict[str, Any] = {
            "msg_id": msg_id,
            "to": self.to,
            "chat_type": self.chat_type,
            "force": self.force or False,
        }
        if self.sender is not None:
            params["from"] = self.sender
        if self.sync_device is not None:
            params["sync_device"] = self.sync_device
        app, ref, _, options, key = shape
        return keyed_item(
            job, line, 0, ref, Vendor.EASEMOB, app, Op.RECALL, msg_id, (msg_id,), options,
            options, params, key,
        )  # fmt: skip

    def _delete_conversation_shape(self, app: str, ref: str) -> _Shape | None:
        username, channel, chat_type, delete_roam = (
            self.username,
            self.channel,
            self.type,
            self.delete_roam,
        )
        if (
            username is None
            or channel is None
            or chat_type is None
            or delete_roam is None
            or username in (".", "..")
            or self.msg_id is not None
            or self.to is not None
            or self.chat_type is not None
            or self.sender is not None
            or self.force is not None
            or self.sync_device is not None
        ):
            return None
        options = _DELETE_ROAM[delete_roam]
        ids = (username, channel, chat_type)
        key = make_item_key(Vendor.EASEMOB, app, Op.DELETE_CONVERSATION, ids, options)
        return (app, ref, Op.DELETE_CONVERSATION, options, key)

    def _delete_conversation(self, job: str, line: int, shape: _Shape) -> Item:
        username, channel, chat_type = self.username, self.channel, self.type
        assert username is not None
        assert channel is not None
        assert chat_type is not None
        params: dict[str, Any] = {
            "username": username,
            "channel": channel,
            "type": chat_type,
            "delete_roam": self.delete_roam,
        }
        app, ref, op, options, key = shape
        return keyed_item(
            job, line, 0, ref, Vendor.EASEMOB, app, op, f"{username}/{channel}",
            (username, channel, chat_type), options, (username,), params, key,
        )  # fmt: skip


class _Yunxin(
    msgspec.Struct, tag_field="vendor", tag="yunxin", forbid_unknown_fields=True, gc=False
):
    """The fields of all four Yunxin ops."""

    op: Literal["recall", "delete_message", "delete_conversation", "clear_history"] | None = None
    app: _App | None = None
    ref: _Text | int | None = None
    sent_at: _SentAt | None = None
    conversation_id: _ConversationId | None = None
    message_server_id: _Digits | None = None
    type: Literal[1, 2, 3] | None = None
    description: _Description | None = None
    ignore_revoke_time: bool | Literal[0, 1] | None = None
    clear_message: bool | None = None

    def shape(self) -> _Shape | None:
        ref = "" if self.ref is None else self.ref if isinstance(self.ref, str) else _ref(self.ref)
        conversation_id = self.conversation_id
        if ref is None or conversation_id is None:
            return None
        plain = _PLAIN_CONVERSATION.fullmatch(conversation_id) is not None
        if not plain and not _CONVERSATION.fullmatch(conversation_id):
            return None
        app = "default" if self.app is None else self.app
        op = self.op
        if op == "recall" or op == "delete_message":  # the common rows: checks in line
            message_id = self.message_server_id
            if (
                message_id is None
                or not (message_id.isdigit() and message_id.isascii())
                or self.clear_message is not None
            ):
                return None
            if op == "recall":
                kind = 2 if self.type is None else self.type
                if kind == 3:
                    return None
                # Only a recall's type changes what the vendor does (delete is its own op).
                op_id, options, tail = _RECALL, _TYPE[kind], _TYPE_TAIL[kind]
            elif self.type is None and self.ignore_revoke_time is None:
                kind, op_id, options, tail = 3, _DELETE_MESSAGE, (), ""
            else:
                return None
            # Yunxin's one-way recall and delete take no super team (conversation type 3).
            if kind != 2 and conversation_id.split("|")[1] == "3":
                return None
            if not plain:
                ids = (conversation_id, message_id)
                key = make_item_key(Vendor.YUNXIN, app, op_id, ids, options)
            else:  # the id's only character to quote is '|'
                part = conversation_id.replace("|", "%7C")
                key = f"yunxin:{app}:{op}:{part}:{message_id}{tail}"
            return (app, ref, op_id, options, key)
        if (
            self.message_server_id is not None
            or self.description is not None
            or self.ignore_revoke_time is not None
        ):
            return None
        if op == "delete_conversation" and self.type is None:
            options = _CLEAR_MESSAGE[self.clear_message or False]
            return self._conversation_shape(app, ref, Op.DELETE_CONVERSATION, options)
        if op == "clear_history" and self.clear_message is None:
            options = _TYPE[3 if self.type is None else self.type]
            return self._conversation_shape(app, ref, Op.CLEAR_HISTORY, options)
        return None

    def items(self, job: str, line: int) -> list[Item] | None:
        shape = self.shape()
        if shape is None:
            return None
        if shape[2] is Op.RECALL or shape[2] is Op.DELETE_MESSAGE:
            return [self._message(job, line, shape)]
        return [self._conversation(job, line, shape)]

    def _message(self, job: str, line: int, shape: _Shape) -> Item:
        conversation_id, message_id = self.conversation_id, self.message_server_id
        assert conversation_id is not None
        assert message_id is not None
        app, ref, op, options, key = shape
        kind = 3 if op is Op.DELETE_MESSAGE else 2 if self.type is None else self.type
        params: dict[str, Any] = {
            "conversation_id": conversation_id,
            "message_server_id": message_id,
            "type": kind,
        }
        if self.description is not None:
            params["description"] = self.description
        if self.ignore_revoke_time is not None:
            params["ignore_revoke_time"] = int(self.ignore_revoke_time)
        return keyed_item(
            job, line, 0, ref, Vendor.YUNXIN, app, op, message_id, (conversation_id, message_id),
            options, (), params, key,
        )  # fmt: skip

    def _conversation_shape(self, app: str, ref: str, op: Op, options: tuple[str, ...]) -> _Shape:
        conversation_id = self.conversation_id
        assert conversation_id is not None
        key = make_item_key(Vendor.YUNXIN, app, op, (conversation_id,), options)
        return (app, ref, op, options, key)

    def _conversation(self, job: str, line: int, shape: _Shape) -> Item:
        conversation_id = self.conversation_id
        assert conversation_id is not None
        app, ref, op, options, key = shape
        params: dict[str, Any] = {"conversation_id": conversation_id}
        if op is Op.DELETE_CONVERSATION:
            params["clear_message"] = self.clear_message or False
        else:
            params["type"] = 3 if self.type is None else self.type
        return keyed_item(
            job, line, 0, ref, Vendor.YUNXIN, app, op, conversation_id, (conversation_id,),
            options,
            # Yunxin takes a list of conversations to delete, all of one clear_message.
            options if op is Op.DELETE_CONVERSATION else (),
            params, key,
        )  # fmt: skip


_DECODER = msgspec.json.Decoder(_Easemob | _Yunxin)
