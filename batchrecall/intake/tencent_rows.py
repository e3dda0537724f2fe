"""Tencent Cloud IM job rows (SPEC §2): their fields, checks and items, in the vendor's own names.

Each builder (an `OpSpec.build` of the catalog's registration) returns one `Target` per item.
Sources: research/vendors-tencent-rongcloud.md §T3.
"""

from __future__ import annotations

from typing import Any

from batchrecall.intake.fields import MAX_TIMESTAMPS, RowError, RowFields, parse_json, show
from batchrecall.intake.targets import Target

_INT64_MAX = 2**63 - 1
C2C, GROUP = "1", "2"
"""recentcontact/delete `Type`: 1 a one-to-one conversation, 2 a group's (§T3.6)."""


def recall(row: RowFields) -> list[Target]:
    """A one-to-one recall (`From_Account`, `To_Account`, `MsgKey`) or a group's (`GroupId`,
    `MsgSeq`: one or a list, `Reason`?)."""
    one_to_one = [name for name in ("From_Account", "To_Account", "MsgKey") if row.has(name)]
    group = [name for name in ("GroupId", "MsgSeq", "Reason") if row.has(name)]
    if one_to_one and group:
        raise RowError(
            f"give either From_Account, To_Account and MsgKey (one-to-one) or GroupId and MsgSeq "
            f"(group), not both (got {show(one_to_one[0])} and {show(group[0])})"
        )
    if not group:
        sender, receiver = row.ident("From_Account"), row.ident("To_Account")
        msg_key = _msg_key(row.get("MsgKey"), "MsgKey")
        fields = {"From_Account": sender, "To_Account": receiver, "MsgKey": msg_key}
        ids = (sender, receiver, msg_key)
        # admin_msgwithdraw takes one MsgKey a call: a batch key of its own keeps it alone.
        return [Target(msg_key, ids, fields, (*ids, "c2c"))]
    group_id = row.ident("GroupId")
    reason = row.optional_text("Reason")
    # group_msg_recall: one GroupId and one Reason a call.
    batch_key = (group_id,) if reason is None else (group_id, f"Reason={reason}")
    parts = []
    for seq in _seqs(row):
        params: dict[str, Any] = {"GroupId": group_id, "MsgSeq": seq}
        if reason is not None:
            params["Reason"] = reason
        parts.append(Target(f"{group_id}#{seq}", (group_id, str(seq)), params, batch_key))
    return parts


def delete_message(row: RowFields) -> list[Target]:
    """delete_c2c_msg_ramble: one side's copy of each `MsgKey` (one or a list) of one pair."""
    operator, peer = row.ident("Operator_Account"), row.ident("Peer_Account")
    value = row.get("MsgKey")
    if value is None:
        raise RowError("missing field 'MsgKey'")
    keys = _list(row, value, "MsgKey")
    parts = []
    for index, raw in enumerate(keys):
        name = "MsgKey" if len(keys) == 1 and not isinstance(value, list) else f"MsgKey[{index}]"
        key = _msg_key(raw, name)
        params = {"Operator_Account": operator, "Peer_Account": peer, "MsgKey": key}
        parts.append(Target(f"{operator}/{key}", (operator, peer, key), params, (operator, peer)))
    return parts


def delete_conversation(row: RowFields) -> list[Target]:
    """recentcontact/delete: `From_Account`'s conversation with `To_Account` or `ToGroupid`."""
    owner = row.ident("From_Account")
    if row.has("To_Account") == row.has("ToGroupid"):
        raise RowError(
            "give exactly one of 'To_Account' (a one-to-one conversation) and 'ToGroupid' "
            "(a group's; Tencent spells it with a lower-case 'id')"
        )
    kind, name = (C2C, "To_Account") if row.has("To_Account") else (GROUP, "ToGroupid")
    other = row.ident(name)
    clear = _clear_ramble(row)
    # ClearRamble is always sent (0 when not given): the item's identity names it either way.
    params: dict[str, Any] = {"From_Account": owner, name: other, "ClearRamble": clear}
    return [Target(f"{owner}/{other}", (owner, kind, other), params)]


def _msg_key(value: Any, name: str) -> str:
    """A MsgKey as Tencent hands it out (`31906_833502_1572869830`): a non-empty string."""
    if not isinstance(value, str) or not value:
        raise RowError(f"field {show(name)} must be a non-empty string (got {show(value)})")
    if len(value) > 256 or not value.isprintable() or " " in value:
        raise RowError(f"field {show(name)} is not a MsgKey (got {show(value)})")
    return value


def _seqs(row: RowFields) -> list[int]:
    value = row.get("MsgSeq")
    if value is None:
        raise RowError("missing field 'MsgSeq'")
    entries = _list(row, value, "MsgSeq")
    if len(entries) == 1 and not isinstance(value, list):
        return [_seq(entries[0], "MsgSeq")]
    return [_seq(entry, f"MsgSeq[{index}]") for index, entry in enumerate(entries)]


def _list(row: RowFields, value: Any, name: str) -> list[Any]:
    """One value or a list of 1 to 10,000; a CSV cell holds a JSON array or `;`-separated
    values."""
    if isinstance(value, str) and row.from_csv:
        text = value.strip()
        if text.startswith("["):
            try:
                value = parse_json(text)
            except (ValueError, RecursionError):
                raise RowError(
                    f"field {show(name)} is not valid JSON; write a JSON array or values "
                    "separated by ';'"
                ) from None
        elif ";" in text:
            value = [part.strip() for part in text.split(";")]
    if not isinstance(value, list):
        return [value]
    if not 1 <= len(value) <= MAX_TIMESTAMPS:
        raise RowError(
            f"field {show(name)} must hold 1 to {MAX_TIMESTAMPS} entries (got {len(value)}); "
            "split the row"
        )
    return value


def _seq(value: Any, name: str) -> int:
    """A message seq: a positive integer, as a JSON integer or its digits."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _INT64_MAX:
        return value
    raise RowError(f"field {show(name)} must be a positive integer seq (got {show(value)})")


def _clear_ramble(row: RowFields) -> int:
    """`ClearRamble`: 0 (keep the roaming messages, the default) or 1; a row may also say it
    as a boolean."""
    value = row.get("ClearRamble")
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return value
    try:
        flag = row.optional_flag("ClearRamble")
    except RowError:
        raise RowError(f"field 'ClearRamble' must be 0 or 1 (got {show(value)})") from None
    return int(bool(flag))
