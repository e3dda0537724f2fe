"""Tencent Cloud IM's server-side state: the app, its accounts, messages, conversations, rates.

Sources: research/vendors-tencent-rongcloud.md §T1-§T3. What the pages leave open is marked
"inferred" where it is decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchrecall.emulators.common import Clock, EmulatorSettings, SlidingWindow

# The reference SDKs' demo SDKAppID (§T2.4); the admin and the key are this emulator's own.
DEFAULT_SDKAPPID = 1400000000
DEFAULT_IDENTIFIER = "administrator"
DEFAULT_SECRET_KEY = "5bd2850fff3ecb11d7c805251c51ee46emulator0000000000000000000000000"
API_RATE = 200.0  # every recall/delete API: "最高调用频率 200次/秒" (§T3)
ROAMING_S = 7 * 86400.0  # roaming storage, 7 days by default (history-apis.md §5)
AV_CHATROOM_WINDOW_S = 3600.0  # AVChatRoom: "只能撤回1个小时以内的消息" (§T3.2)

# Codes (§T1.5, §T3).
OK = 0
C2C_NOT_FOUND = 20022  # "该待撤回的消息不存在"
C2C_ALREADY_RECALLED = 20023  # "该消息已被撤回"
GROUP_NOT_FOUND = 10010
SEQ_NOT_FOUND = 10030  # "请求撤回的消息不存在"
SEQ_WINDOW = 10031  # "消息撤回超过了时间限制"; for AVChatRoom's hour, inferred
ACCOUNT_NOT_FOUND = 50001

PUBLIC, AV_CHATROOM = "Public", "AVChatRoom"


@dataclass(slots=True)
class _Message:
    sent_at: float
    sender: str
    receiver: str = ""
    recalled: bool = False
    number: int = 0
    """Arrival order: MsgSeq and MsgRandom of a one-to-one message, a tie-break of times."""
    deleted_for: set[str] = field(default_factory=set)
    """Accounts whose own copy is deleted (delete_c2c_msg_ramble, ClearRamble)."""


class TencentState:
    """One Tencent IM app (SDKAppID): its admin, key, accounts, messages and conversations."""

    def __init__(
        self,
        settings: EmulatorSettings,
        *,
        clock: Clock,
        sdkappid: int = DEFAULT_SDKAPPID,
        identifier: str = DEFAULT_IDENTIFIER,
        secret_key: str = DEFAULT_SECRET_KEY,
    ) -> None:
        self.clock = clock
        self.sdkappid = sdkappid
        self.identifier = identifier
        self.secret_key = secret_key
        self.admins = {identifier}
        self.roaming_s = ROAMING_S
        """Messages older than this are gone: their recall answers "does not exist"."""
        self._rate = API_RATE if settings.rate is None else settings.rate
        self._windows: dict[str, SlidingWindow] = {}
        self._c2c: dict[str, _Message] = {}
        self._groups: dict[str, str] = {}
        self._seqs: dict[tuple[str, int], _Message] = {}
        self._conversations: dict[tuple[str, int, str], float] = {}
        """Each conversation and its time: its last message's, else when it began."""
        self._accounts: set[str] = set()
        self._numbers = 0

    # Seeding and queries.

    @property
    def accounts(self) -> frozenset[str]:
        """The accounts the app knows (imported)."""
        return frozenset(self._accounts)

    def add_account(self, account: str) -> None:
        self._accounts.add(account)

    def add_c2c_message(
        self, msg_key: str, *, sender: str, receiver: str, sent_at: float | None = None
    ) -> None:
        """A one-to-one message, as `MsgKey` names it, and both parties' conversations."""
        when = self.clock() if sent_at is None else sent_at
        self._numbers += 1
        self._c2c[msg_key] = _Message(
            sent_at=when, sender=sender, receiver=receiver, number=self._numbers
        )
        self._accounts |= {sender, receiver}
        for key in ((sender, 1, receiver), (receiver, 1, sender)):
            self._conversations[key] = max(self._conversations.get(key, when), when)

    def add_group(self, group_id: str, group_type: str = PUBLIC) -> None:
        self._groups.setdefault(group_id, group_type)

    def add_group_message(
        self, group_id: str, seq: int, *, sender: str = "", sent_at: float | None = None
    ) -> None:
        self.add_group(group_id)
        when = self.clock() if sent_at is None else sent_at
        self._seqs[(group_id, seq)] = _Message(sent_at=when, sender=sender)
        if sender:
            self._accounts.add(sender)

    def add_conversation(
        self, owner: str, kind: int, other: str, *, last_at: float | None = None
    ) -> None:
        """`owner`'s conversation with an account (kind 1) or a group (kind 2), last active
        at `last_at` (default: now)."""
        self._accounts.add(owner)
        if kind == 1:
            self._accounts.add(other)
        else:
            self.add_group(other)
        when = self.clock() if last_at is None else last_at
        self._conversations[(owner, kind, other)] = when

    def is_recalled(self, msg_key: str) -> bool:
        message = self._c2c.get(msg_key)
        return message is not None and message.recalled

    def is_seq_recalled(self, group_id: str, seq: int) -> bool:
        message = self._seqs.get((group_id, seq))
        return message is not None and message.recalled

    def deleted_for(self, msg_key: str) -> frozenset[str]:
        """The accounts whose copy of the message is deleted."""
        message = self._c2c.get(msg_key)
        return frozenset(message.deleted_for) if message else frozenset()

    def conversation_exists(self, owner: str, kind: int, other: str) -> bool:
        return (owner, kind, other) in self._conversations

    # History (collect).

    def roaming(
        self, operator: str, peer: str, min_s: int, max_s: int
    ) -> list[tuple[str, dict[str, Any]]]:
        """The pair's messages sent in [min_s, max_s] (seconds) that the operator still has,
        newest first, as admin_getroammsg lists them (recalled ones flagged 8)."""
        found = [
            (key, message)
            for key, message in self._c2c.items()
            if {message.sender, message.receiver} == {operator, peer}
            and operator not in message.deleted_for
            and not self._expired(message)
            and min_s <= int(message.sent_at) <= max_s
        ]
        found.sort(key=lambda pair: (int(pair[1].sent_at), pair[1].number), reverse=True)
        return [
            (
                key,
                {
                    "From_Account": message.sender,
                    "To_Account": message.receiver,
                    "MsgSeq": message.number,
                    "MsgRandom": message.number * 7919 % 2**32,
                    "MsgTimeStamp": int(message.sent_at),
                    "MsgFlagBits": 8 if message.recalled else 0,
                    "IsPeerRead": 0,
                    "MsgKey": key,
                    "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": ""}}],
                },
            )
            for key, message in found
        ]

    def group_messages(self, group_id: str, below_seq: int | None) -> list[dict[str, Any]] | None:
        """The group's messages at or below `below_seq`, newest first, as group_msg_get_simple
        lists them (IsPlaceMsg 1 expired, 2 recalled); None for an unknown group."""
        if group_id not in self._groups:
            return None
        seqs = sorted(
            (seq for (group, seq) in self._seqs if group == group_id),
            reverse=True,
        )
        answered = []
        for seq in seqs:
            if below_seq is not None and seq > below_seq:
                continue
            message = self._seqs[(group_id, seq)]
            place = 2 if message.recalled else 1 if self._expired(message) else 0
            answered.append(
                {
                    "From_Account": message.sender,
                    "IsPlaceMsg": place,
                    "IsSystemMsg": 0,
                    "MsgPriority": 1,
                    "MsgRandom": seq * 7919 % 2**32,
                    "MsgSeq": seq,
                    "MsgTimeStamp": int(message.sent_at),
                    "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": ""}}],
                }
            )
        return answered

    def sent_records(self, chat_type: str) -> list[tuple[float, dict[str, Any]]]:
        """Every message sent, one-to-one (`C2C`) or a group's (`Group`), with its send time,
        as the hourly export records it: a log of what was sent, which recalls do not
        change (the record's fields: inferred, README)."""
        body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": ""}}]
        if chat_type == "C2C":
            return [
                (
                    message.sent_at,
                    {
                        "From_Account": message.sender,
                        "To_Account": message.receiver,
                        "MsgTimestamp": int(message.sent_at),
                        "MsgSeq": message.number,
                        "MsgRandom": message.number * 7919 % 2**32,
                        "MsgKey": key,
                        "MsgBody": body,
                    },
                )
                for key, message in self._c2c.items()
            ]
        return [
            (
                message.sent_at,
                {
                    "GroupId": group_id,
                    "From_Account": message.sender,
                    "MsgTimestamp": int(message.sent_at),
                    "MsgSeq": seq,
                    "MsgRandom": seq * 7919 % 2**32,
                    "MsgBody": body,
                },
            )
            for (group_id, seq), message in self._seqs.items()
        ]

    def conversation_list(self, owner: str) -> list[dict[str, Any]]:
        """`owner`'s conversations as recentcontact/get_list's SessionItem, newest first."""
        mine = [(when, key) for key, when in self._conversations.items() if key[0] == owner]
        mine.sort(reverse=True)
        items = []
        for when, (_, kind, other) in mine:
            item: dict[str, Any] = {"Type": kind}
            item["To_Account" if kind == 1 else "GroupId"] = other
            item |= {"MsgTime": int(when), "TopFlag": 0}
            items.append(item)
        return items

    # Rate.

    def admit(self, api: str) -> bool:
        """Counts one call of `api`: each API has its own rate per SDKAppID (§T3)."""
        window = self._windows.get(api)
        if window is None:
            window = self._windows[api] = SlidingWindow.per_second(self._rate)
        return window.admit(self.clock())

    # Operations.

    def recall_c2c(self, sender: str, receiver: str, msg_key: str) -> int:
        """admin_msgwithdraw: no time limit, but within the roaming period (§T3.1)."""
        message = self._c2c.get(msg_key)
        if message is None or (message.sender, message.receiver) != (sender, receiver):
            return C2C_NOT_FOUND
        if message.recalled:
            return C2C_ALREADY_RECALLED
        if self._expired(message):
            return C2C_NOT_FOUND
        message.recalled = True
        return OK

    def recall_group(self, group_id: str, seqs: list[int]) -> int | list[tuple[int, int]]:
        """group_msg_recall: GROUP_NOT_FOUND, or each seq's RetCode. A seq recalled before is
        "does not exist" again (inferred: §T3.2 does not say)."""
        group_type = self._groups.get(group_id)
        if group_type is None:
            return GROUP_NOT_FOUND
        results = []
        for seq in seqs:
            message = self._seqs.get((group_id, seq))
            if message is None or message.recalled or self._expired(message):
                results.append((seq, SEQ_NOT_FOUND))
            elif group_type == AV_CHATROOM and self._age(message) > AV_CHATROOM_WINDOW_S:
                results.append((seq, SEQ_WINDOW))
            else:
                message.recalled = True
                results.append((seq, OK))
        return results

    def delete_c2c(self, operator: str, peer: str, msg_keys: list[str]) -> int:
        """delete_c2c_msg_ramble: the operator's copy of each message of the pair, all or none
        (inferred: the page documents no per-key result); a key that is not the pair's, gone,
        recalled or already deleted for the operator answers C2C_NOT_FOUND."""
        pair = {operator, peer}
        found = []
        for key in msg_keys:
            message = self._c2c.get(key)
            if (
                message is None
                or {message.sender, message.receiver} != pair
                or message.recalled
                or operator in message.deleted_for
                or self._expired(message)
            ):
                return C2C_NOT_FOUND
            found.append(message)
        for message in found:
            message.deleted_for.add(operator)
        return OK

    def delete_conversation(self, owner: str, kind: int, other: str, *, clear: bool) -> int:
        """recentcontact/delete: ACCOUNT_NOT_FOUND for an owner never imported; else OK, the
        conversation there or not (inferred: no code for a missing one is documented), and with
        `clear` the owner's copies of the pair's messages go too."""
        if owner not in self._accounts:
            return ACCOUNT_NOT_FOUND
        self._conversations.pop((owner, kind, other), None)
        if clear and kind == 1:
            for message in self._c2c.values():
                if {message.sender, message.receiver} == {owner, other}:
                    message.deleted_for.add(owner)
        return OK

    def _age(self, message: _Message) -> float:
        return self.clock() - message.sent_at

    def _expired(self, message: _Message) -> bool:
        return self._age(message) > self.roaming_s


def seed_request(
    state: TencentState, op: str, params: Mapping[str, Any], *, sent_at: float
) -> None:
    """Make what one job item names exist (`emulate --seed`, `run --emulate`), from the row's
    own fields: a one-to-one message, a group's seq, or a conversation."""
    if op == "delete_conversation":
        if "ToGroupid" in params:
            state.add_conversation(str(params["From_Account"]), 2, str(params["ToGroupid"]))
        else:
            state.add_conversation(str(params["From_Account"]), 1, str(params["To_Account"]))
    elif "GroupId" in params:
        state.add_group_message(str(params["GroupId"]), int(params["MsgSeq"]), sent_at=sent_at)
    elif op == "delete_message":
        # The operator's side of the pair: sent by the operator (either way is the pair's).
        state.add_c2c_message(
            str(params["MsgKey"]),
            sender=str(params["Operator_Account"]),
            receiver=str(params["Peer_Account"]),
            sent_at=sent_at,
        )
    else:
        state.add_c2c_message(
            str(params["MsgKey"]),
            sender=str(params["From_Account"]),
            receiver=str(params["To_Account"]),
            sent_at=sent_at,
        )
