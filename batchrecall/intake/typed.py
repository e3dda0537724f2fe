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

__all__ = ["typed_items"]

# The forms of RowFields' getters (intake/fields.py), as msgspec constraints; a pattern is
# searched, so each is anchored at both ends.
_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
_Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
_Digits = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,32}\Z")]
_App = Annotated[str, msgspec.Meta(pattern=rf"^[{APP_CHARS}]{{1,{MAX_TEXT}}}\Z")]
_UrlIdent = Annotated[str, msgspec.Meta(max_length=MAX_TEXT, pattern=rf"^[^{URL_UNSAFE_CHARS}]+\Z")]
# Yunxin `sender|type|receiver`, type 1, 2 or 3; it goes into the URL, so neither party may be
# '.' or '..'.
_PARTY = rf"(?!\.\.?(?:\||\Z))[^|{URL_UNSAFE_CHARS}]+"
_ConversationId = Annotated[
    str, msgspec.Meta(max_length=MAX_TEXT, pattern=rf"^{_PARTY}\|[123]\|{_PARTY}\Z")
]
_Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION)]
# A JSON integer only: a `sent_at` written as digits takes the careful path.
_SentAt = Annotated[int, msgspec.Meta(gt=0, lt=MAX_SENT_AT)]
# A JSON integer `ref` is kept as its digits; one past 64 bits takes the careful path.
_MAX_REF_INT = 2**64
# A conversation id whose only character an item key quotes is '|' (as %7C).
_PLAIN_CONVERSATION = re.compile(r"[A-Za-z0-9_.~-]+\|[123]\|[A-Za-z0-9_.~-]+")

_FORCE = {True: ("force=true",), False: ("force=false",)}
_DELETE_ROAM = {True: ("delete_roam=true",), False: ("delete_roam=false",)}
_CLEAR_MESSAGE = {True: ("clear_message=true",), False: ("clear_message=false",)}
_TYPE = {kind: (f"type={kind}",) for kind in (1, 2, 3)}


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


def _ref(ref: str | int | None) -> str | None:
    if ref is None:
        return ""
    if isinstance(ref, int):
        return str(ref) if -_MAX_REF_INT < ref < _MAX_REF_INT else None
    return ref


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

    def items(self, job: str, line: int) -> list[Item] | None:
        ref = "" if self.ref is None else self.ref if isinstance(self.ref, str) else _ref(self.ref)
        if ref is None:
            return None
        app = "default" if self.app is None else self.app
        if self.op == "recall":
            return self._recall(job, line, app, ref)
        if self.op == "delete_conversation":
            return self._delete_conversation(job, line, app, ref)
        return None

    def _recall(self, job: str, line: int, app: str, ref: str) -> list[Item] | None:
        msg_id, to, chat_type = self.msg_id, self.to, self.chat_type
        if (
            msg_id is None
            or to is None
            or chat_type is None
            or self.username is not None
            or self.channel is not None
            or self.type is not None
            or self.delete_roam is not None
        ):
            return None
        force = self.force or False
        params: dict[str, Any] = {
            "msg_id": msg_id,
            "to": to,
            "chat_type": chat_type,
            "force": force,
        }
        if self.sender is not None:
            params["from"] = self.sender
        if self.sync_device is not None:
            params["sync_device"] = self.sync_device
        options = _FORCE[force]
        # Every part is plain: the app's letters, digits, '_' and '-', the digits of msg_id.
        key = f"easemob:{app}:recall:{msg_id}:{options[0]}"
        return [
            keyed_item(
                job, line, 0, ref, Vendor.EASEMOB, app, Op.RECALL, msg_id, (msg_id,),
                options, options, params, key,
            )
        ]  # fmt: skip

    def _delete_conversation(self, job: str, line: int, app: str, ref: str) -> list[Item] | None:
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
        params: dict[str, Any] = {
            "username": username,
            "channel": channel,
            "type": chat_type,
            "delete_roam": delete_roam,
        }
        return [
            Item(
                job=job,
                line=line,
                index=0,
                ref=ref,
                vendor=Vendor.EASEMOB,
                app=app,
                op=Op.DELETE_CONVERSATION,
                target=f"{username}/{channel}",
                ids=(username, channel, chat_type),
                options=_DELETE_ROAM[delete_roam],
                batch_key=(username,),
                params=params,
            )
        ]


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

    def items(self, job: str, line: int) -> list[Item] | None:
        ref = "" if self.ref is None else self.ref if isinstance(self.ref, str) else _ref(self.ref)
        if ref is None or self.conversation_id is None:
            return None
        app = "default" if self.app is None else self.app
        op = self.op
        if op == "recall":
            if self.clear_message is not None:
                return None
            kind = 2 if self.type is None else self.type
            return self._message(job, line, app, ref, Op.RECALL, "recall", kind)
        if op == "delete_message":
            if (
                self.type is not None
                or self.ignore_revoke_time is not None
                or self.clear_message is not None
            ):
                return None
            return self._message(job, line, app, ref, Op.DELETE_MESSAGE, "delete_message", 3)
        if (
            self.message_server_id is not None
            or self.description is not None
            or self.ignore_revoke_time is not None
        ):
            return None
        if op == "delete_conversation" and self.type is None:
            clear = self.clear_message or False
            options = _CLEAR_MESSAGE[clear]
            params = {"conversation_id": self.conversation_id, "clear_message": clear}
            return self._conversation(job, line, app, ref, Op.DELETE_CONVERSATION, params, options)
        if op == "clear_history" and self.clear_message is None:
            kind = 3 if self.type is None else self.type
            params = {"conversation_id": self.conversation_id, "type": kind}
            return self._conversation(job, line, app, ref, Op.CLEAR_HISTORY, params, _TYPE[kind])
        return None

    def _message(
        self, job: str, line: int, app: str, ref: str, op: Op, op_name: str, kind: int
    ) -> list[Item] | None:
        """A recall (type 1 or 2) or a delete (type 3) of one message."""
        conversation_id, message_id = self.conversation_id, self.message_server_id
        assert conversation_id is not None
        if (
            message_id is None
            or (op is Op.RECALL and kind == 3)
            # Yunxin's one-way recall and delete take no super team (conversation type 3).
            or (kind != 2 and conversation_id.split("|")[1] == "3")
        ):
            return None
        params: dict[str, Any] = {
            "conversation_id": conversation_id,
            "message_server_id": message_id,
            "type": kind,
        }
        if self.description is not None:
            params["description"] = self.description
        if self.ignore_revoke_time is not None:
            params["ignore_revoke_time"] = int(self.ignore_revoke_time)
        ids = (conversation_id, message_id)
        # delete_message is its own op; only a recall's type changes what the vendor does.
        options = _TYPE[kind] if kind != 3 else ()
        if not _PLAIN_CONVERSATION.fullmatch(conversation_id):
            key = make_item_key(Vendor.YUNXIN, app, op, ids, options)
        else:  # the id's only character to quote is '|'
            part = conversation_id.replace("|", "%7C")
            key = f"yunxin:{app}:{op_name}:{part}:{message_id}"
            if options:
                key = f"{key}:{options[0]}"
        return [
            keyed_item(
                job, line, 0, ref, Vendor.YUNXIN, app, op, message_id, ids, options, (), params,
                key,
            )
        ]  # fmt: skip

    def _conversation(
        self,
        job: str,
        line: int,
        app: str,
        ref: str,
        op: Op,
        params: dict[str, Any],
        options: tuple[str, ...],
    ) -> list[Item]:
        conversation_id = self.conversation_id
        assert conversation_id is not None
        return [
            Item(
                job=job,
                line=line,
                index=0,
                ref=ref,
                vendor=Vendor.YUNXIN,
                app=app,
                op=op,
                target=conversation_id,
                ids=(conversation_id,),
                options=options,
                # Yunxin takes a list of conversations to delete, all of one clear_message.
                batch_key=options if op is Op.DELETE_CONVERSATION else (),
                params=params,
            )
        ]


_DECODER = msgspec.json.Decoder(_Easemob | _Yunxin)
