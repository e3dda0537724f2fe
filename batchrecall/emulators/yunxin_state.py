"""Yunxin's server-side state: credentials, nonces, messages, conversations and the counter."""

from __future__ import annotations

import hashlib
import heapq
import math
from dataclasses import dataclass, field
from typing import Any

from batchrecall.emulators.common import Clock, EmulatorSettings, SlidingWindow

DEFAULT_APP_KEY = "emulatorappkey0000000000000000"
DEFAULT_APP_SECRET = "emulatorsecret"

CURTIME_TOLERANCE_S = 300  # "CheckSum 的有效期为 CurTime 时间开始之后的 5 分钟内" (vendors.md §2.2)
NONCE_MAX = 128  # vendors.md §2.2: Nonce, at most 128 characters
THROTTLE_BLOCK_S = 10.0  # v1 recall doc: "如超限，将被屏蔽 10 秒" (vendors.md §2.8)
LONG_WINDOW_S = 30 * 86400.0  # seed 003 and SDK javadoc: one-way recall and delete, 30 days

# Body codes (vendors.md §2.3 and §7).
OK = 200
NO_PERMISSION = 403
NOT_FOUND = 404
BAD_PARAMETER = 414
WINDOW_EXCEEDED = 508

ONE_WAY, TWO_WAY, DELETE = 1, 2, 3
P2P, TEAM, SUPER_TEAM = 1, 2, 3


def is_digits(text: str) -> bool:
    """Whether `text` is a non-empty run of ASCII digits."""
    return text.isascii() and text.isdigit()


def parse_conversation_id(conversation_id: str) -> tuple[str, int, str] | None:
    """`sender|type|receiver` with type 1 (P2P), 2 (team) or 3 (super team), else None."""
    parts = conversation_id.split("|")
    if len(parts) != 3 or not parts[0] or not parts[2] or parts[1] not in ("1", "2", "3"):
        return None
    return parts[0], int(parts[1]), parts[2]


@dataclass(slots=True, kw_only=True)
class _Message:
    sent_at: float
    conversation_id: str = ""
    server_id: str = ""
    removed_by: int | None = None

    def item(self) -> dict[str, Any]:
        """The message as the history endpoints answer it (SDK QueryMessagesByPageResponseV2):
        its sender is the conversation id's first part."""
        sender, kind, other = self.conversation_id.split("|")
        item: dict[str, Any] = {
            "message_server_id": int(self.server_id),
            "message_client_id": f"client-{self.server_id}",
            "conversation_type": int(kind),
            "sender_id": sender,
            "message_type": 0,
            "create_time": int(self.sent_at * 1000),
            "text": "",
        }
        item["receiver_id" if kind == "1" else "team_id"] = other
        return item


@dataclass(slots=True)
class _Conversation:
    cleared: set[str] = field(default_factory=set)


class YunxinState:
    """One Yunxin app: messages by (conversation, server id), conversations, nonces, rate."""

    def __init__(
        self,
        settings: EmulatorSettings,
        *,
        clock: Clock,
        app_key: str = DEFAULT_APP_KEY,
        app_secret: str = DEFAULT_APP_SECRET,
    ) -> None:
        self.clock = clock
        self.recall_window_s = settings.recall_window_s
        self.app_key = app_key
        self.app_secret = app_secret
        self._window = SlidingWindow.per_second(settings.rate)
        self._blocked_until = -math.inf
        self._messages: dict[tuple[str, str], _Message] = {}
        self._conversations: dict[str, _Conversation] = {}
        self._by_conversation: dict[str, list[_Message]] = {}
        self.checksum_refusal: str | None = None
        """The msg of every signature refusal when set: Yunxin does not document its wording,
        so tests make it say something else than this emulator's own words."""
        self.refusals: dict[tuple[str, str], str] = {}
        """Messages whose recall or delete is refused with 414 and this msg (v1 recall doc: a
        message hit by moderation answers 414)."""
        self.revoke_flag_names: tuple[str, ...] = ("ingore_revoke_time",)
        """The spellings of the skip-the-window flag this server knows: the API page's
        (seed 003); add the SDKs' `ignore_revoke_time` to play a server that knows it."""
        self.strict_params = True
        """True: a query parameter the endpoint does not document is refused with 414, as seed
        003 does for a value it does not know ("传其他值均判定为非法参数"); False: ignored."""
        self.history_v21 = True
        """False: the v2.1 history path answers HTTP 404 (a server with only the v2 path)."""
        self._left_teams: set[tuple[str, str]] = set()
        self._nonces: set[tuple[str, str]] = set()
        self._nonce_expiry: list[tuple[float, tuple[str, str]]] = []

    # Seeding and queries.

    def add_conversation(self, conversation_id: str) -> None:
        """Creates the server-side conversation (an owner's view, `owner|type|other`)."""
        self._conversations.setdefault(conversation_id, _Conversation())

    def add_message(
        self, conversation_id: str, message_server_id: int | str, *, sent_at: float | None = None
    ) -> None:
        """Stores a message of the conversation `sender|type|receiver`, sent at `sent_at`."""
        self.add_conversation(conversation_id)
        when = self.clock() if sent_at is None else sent_at
        message = _Message(
            sent_at=when, conversation_id=conversation_id, server_id=str(message_server_id)
        )
        self._messages[(conversation_id, str(message_server_id))] = message
        self._by_conversation.setdefault(conversation_id, []).append(message)

    def history(self, conversation_id: str, begin_ms: int, end_ms: int) -> list[_Message]:
        """A conversation's messages sent in [begin, end], oldest first: a one-to-one
        conversation's both ways, a team's everyone's. Removed ones are left out (Yunxin returns
        no two-way recalled message, and one-way ones only with include_no_sense_msg)."""
        parsed = parse_conversation_id(conversation_id)
        if parsed is None:
            return []
        owner, kind, other = parsed
        if kind == P2P:
            wanted = {f"{owner}|1|{other}", f"{other}|1|{owner}"}
            found = [m for cid in wanted for m in self._by_conversation.get(cid, [])]
        else:
            found = [
                m
                for cid, messages in self._by_conversation.items()
                if cid.split("|")[1:] == [str(kind), other]
                for m in messages
            ]
        return _visible(found, begin_ms, end_ms)

    def search(
        self, operator: str, senders: set[str], start_ms: int, end_ms: int
    ) -> list[_Message]:
        """The senders' messages in [start, end) in the operator's conversations: one-to-one
        ones the operator is a party to, and teams the operator has a conversation in or sent
        to; newest first (direction 0)."""
        teams = {
            cid.split("|")[2]
            for cid in (*self._conversations, *self._by_conversation)
            if cid.split("|")[0] == operator and cid.split("|")[1] != str(P2P)
        }
        found = []
        for cid, messages in self._by_conversation.items():
            sender, kind, other = cid.split("|")
            if sender not in senders:
                continue
            mine = operator in (sender, other) if kind == str(P2P) else other in teams
            if mine:
                found.extend(messages)
        visible = _visible(found, start_ms, end_ms - 1)
        return visible[::-1]

    def knows_account(self, account: str) -> bool:
        """Whether the account appears in any conversation or message."""
        return any(
            account in (cid.split("|")[0], cid.split("|")[2])
            for cid in (*self._conversations, *self._by_conversation)
        )

    def leave_team(self, team_id: str, account: str) -> None:
        """`account` is no longer a member of the team (a spammer removed from it)."""
        self._left_teams.add((team_id, account))

    def conversations_of(self, account: str) -> list[str]:
        """The conversation ids `account` owns (`account|type|other`), in creation order."""
        return [cid for cid in self._conversations if cid.split("|", 1)[0] == account]

    def is_recalled(self, conversation_id: str, message_server_id: int | str) -> bool:
        """Whether the message was recalled or deleted (by any type)."""
        return self.removed_by(conversation_id, message_server_id) is not None

    def removed_by(self, conversation_id: str, message_server_id: int | str) -> int | None:
        """The `type` (1 one-way, 2 two-way, 3 delete) that removed the message, if any."""
        message = self._messages.get((conversation_id, str(message_server_id)))
        return None if message is None else message.removed_by

    def conversation_exists(self, conversation_id: str) -> bool:
        """Whether the conversation exists (not deleted)."""
        return conversation_id in self._conversations

    def history_cleared(self, conversation_id: str) -> frozenset[str]:
        """Which of "roaming" and "history" were cleared for the conversation."""
        conversation = self._conversations.get(conversation_id)
        return frozenset(conversation.cleared) if conversation else frozenset()

    # Authentication and rate.

    def authenticate(self, app_key: str, nonce: str, cur_time: str, checksum: str) -> str | None:
        """Checks the signature headers; None when they pass, else the refusal's message."""
        refusal = self._signature_refusal(app_key, nonce, cur_time, checksum)
        if refusal is not None and self.checksum_refusal is not None:
            return self.checksum_refusal
        return refusal

    def _signature_refusal(
        self, app_key: str, nonce: str, cur_time: str, checksum: str
    ) -> str | None:
        if app_key != self.app_key:
            return "appkey invalid"
        if len(nonce) > NONCE_MAX:
            return f"nonce too long (at most {NONCE_MAX} characters)"
        if not is_digits(cur_time):
            return "curtime invalid: epoch seconds expected"
        now = self.clock()
        if abs(now - int(cur_time)) > CURTIME_TOLERANCE_S:
            return "curtime expired"
        digest = hashlib.sha1((self.app_secret + nonce + cur_time).encode()).hexdigest()
        if checksum != digest:  # lower-case hex only (vendors.md §2.2)
            return "checksum error"
        return self._remember_nonce(nonce, cur_time, now)

    def _remember_nonce(self, nonce: str, cur_time: str, now: float) -> str | None:
        """Refuses a (Nonce, CurTime) pair seen while it is still valid (a replay)."""
        while self._nonce_expiry and self._nonce_expiry[0][0] < now:
            _, old = heapq.heappop(self._nonce_expiry)
            self._nonces.discard(old)
        key = (nonce, cur_time)
        if key in self._nonces:
            return "nonce reused"
        self._nonces.add(key)
        heapq.heappush(self._nonce_expiry, (int(cur_time) + CURTIME_TOLERANCE_S, key))
        return None

    def admit(self) -> bool:
        """Counts one call; over the rate the app is refused for the next 10 s."""
        now = self.clock()
        if now < self._blocked_until:
            return False
        if self._window.admit(now):
            return True
        self._blocked_until = now + THROTTLE_BLOCK_S
        return False

    # Operations.

    def remove_message(
        self,
        conversation_id: str,
        message_server_id: str,
        *,
        op: int,
        ignore_revoke_time: bool,
        check_team_member: bool = True,
    ) -> tuple[int, str]:
        """Recalls (op 1 or 2) or deletes (op 3) a message: the answer's code and msg."""
        refusal = self.refusals.get((conversation_id, message_server_id))
        if refusal is not None:
            return BAD_PARAMETER, refusal
        sender, kind, receiver = conversation_id.split("|")
        if check_team_member and kind != str(P2P) and (receiver, sender) in self._left_teams:
            # v1 recall doc: a sender who left the team gets 403 "not allow!"; seed 003's
            # check_team_member_valid=false skips the check.
            return NO_PERMISSION, "not allow!"
        message = self._messages.get((conversation_id, message_server_id))
        # Inferred: a one-way recall leaves the sender's copy (SDK javadoc), so a two-way recall
        # of the same message still finds it; anything else already removed is not found.
        stronger = op == TWO_WAY and message is not None and message.removed_by == ONE_WAY
        if message is None or (message.removed_by is not None and not stronger):
            return NOT_FOUND, "message not found"
        age = self.clock() - message.sent_at
        # Two-way: the configured window; ignore_revoke_time=1 allows 30 days (seed 003).
        # One-way and delete: 30 days (SDK javadoc); the answer past it is inferred.
        two_way_only = op == TWO_WAY and not ignore_revoke_time
        limit = self.recall_window_s if two_way_only else LONG_WINDOW_S
        if age > limit:
            return WINDOW_EXCEEDED, "消息撤回时间超限"
        message.removed_by = op
        return OK, "success"

    def clear_history(self, conversation_id: str, kind: int) -> bool:
        """Clears roaming (1), history (2) or both (3); False for an unknown conversation."""
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            return False
        conversation.cleared |= {1: {"roaming"}, 2: {"history"}, 3: {"roaming", "history"}}[kind]
        return True

    def last_message(self, conversation_id: str) -> dict[str, Any] | None:
        """The conversation's last message (as the history answers it), if one is left."""
        messages = self.history(conversation_id, 0, 2**62)
        return messages[-1].item() if messages else None

    def delete_conversation(self, conversation_id: str, *, clear_message: bool) -> bool:
        """Deletes the conversation, and its messages with `clear_message` (inferred: they are
        gone for a later recall too); False for an unknown conversation."""
        if self._conversations.pop(conversation_id, None) is None:
            return False
        if clear_message:
            for message in self._by_conversation.get(conversation_id, []):
                if message.removed_by is None:
                    message.removed_by = DELETE
        return True


def _visible(messages: list[_Message], begin_ms: int, end_ms: int) -> list[_Message]:
    """Not removed, sent in [begin, end] (ms), oldest first (by send time, then server id)."""
    kept = [
        m for m in messages if m.removed_by is None and begin_ms <= int(m.sent_at * 1000) <= end_ms
    ]
    return sorted(kept, key=lambda m: (int(m.sent_at * 1000), int(m.server_id)))
