"""The value types that flow through a run: items, calls, outcomes and result rows."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

# Easemob user_channel: 5 calls a minute per user ID (vendors.md §1.8); the plan's estimate and
# the lanes' per-user pacing both follow it.
USER_PACING_RATE, USER_PACING_PERIOD_S = 5, 60.0


class Vendor(str):
    """A vendor's name, as its registration in the catalog gives it (`batchrecall.catalog`).

    Any registered name is one, plugins' too; the built-in ones have constants. One object per
    name (`Vendor("easemob") is Vendor.EASEMOB`), so that it compares at the speed of an enum.
    Making one checks nothing: callers ask the catalog whether a name is installed.
    """

    __slots__ = ()
    _named: ClassVar[dict[str, Vendor]] = {}
    EASEMOB: ClassVar[Vendor]
    GOEASY: ClassVar[Vendor]
    YUNXIN: ClassVar[Vendor]
    TENCENT: ClassVar[Vendor]
    RONGCLOUD: ClassVar[Vendor]

    def __new__(cls, name: str) -> Vendor:
        vendor = cls._named.get(name)
        if vendor is None:
            vendor = cls._named[name] = super().__new__(cls, name)
        return vendor

    def __repr__(self) -> str:
        return f"Vendor({str.__repr__(self)})"

    def __str__(self) -> str:
        return str.__str__(self)


Vendor.EASEMOB = Vendor("easemob")
Vendor.GOEASY = Vendor("goeasy")
Vendor.YUNXIN = Vendor("yunxin")
Vendor.TENCENT = Vendor("tencent")
Vendor.RONGCLOUD = Vendor("rongcloud")


class Op(StrEnum):
    RECALL = "recall"
    DELETE_CONVERSATION = "delete_conversation"
    DELETE_MESSAGE = "delete_message"
    CLEAR_HISTORY = "clear_history"


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job file: where it is, and its name as the command line gave it (echoed in results)."""

    path: Path
    name: str
    encoding: str = "utf-8"
    """The file's text encoding (`--encoding`), as a canonical codec name."""


class Status(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    INVALID = "invalid"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


_NEEDS_NO_QUOTING = re.compile(r"[A-Za-z0-9_.~-]*\Z")
_PLAIN_JOINED = re.compile(r"[A-Za-z0-9_.~:-]*")
_PLAIN_JOINED_OPTIONS = re.compile(r"[A-Za-z0-9_.~=:-]*")
# The ASCII characters `quote` escapes; ':' is left to the caller, as it joins parts holding none.
_UNSAFE_ASCII = {safe: re.compile(f"[^A-Za-z0-9_.~{safe}:-]") for safe in ("", "=")}


def _quoted(part: str, safe: str = "") -> str:
    return part if _NEEDS_NO_QUOTING.match(part) else quote(part, safe=safe)


def _joined(parts: tuple[str, ...], plain: re.Pattern[str], safe: str) -> str:
    """`parts`, each percent-encoded but for `safe`, joined by ':'."""
    text = ":".join(parts)
    if text.count(":") == len(parts) - 1:  # no part holds a ':' of its own
        if plain.fullmatch(text):
            return text
        if text.isascii():
            return _escaped(text, _UNSAFE_ASCII[safe])
    return ":".join([_quoted(part, safe=safe) for part in parts])


def _escaped(text: str, unsafe: re.Pattern[str]) -> str:
    """What `quote` makes of ASCII text: each unsafe character as %XX (upper case), '%' first
    so that no escape is escaped again."""
    found = set(unsafe.findall(text))
    if "%" in found:
        found.discard("%")
        text = text.replace("%", "%25")
    for char in found:
        text = text.replace(char, f"%{ord(char):02X}")
    return text


def make_item_key(
    vendor: str, app: str, op: str, ids: tuple[str, ...], options: tuple[str, ...] = ()
) -> str:
    """A stable identity: vendor, app, op, the target ids and the options that change what the
    vendor does (SPEC §2), each percent-encoded; an option reads `name=value`.

    Results files of every version must keep matching, so a key is byte for byte what
    `urllib.parse.quote` gives each part (the options keeping their '='); it is just made with a
    join and one check, and a replace for each unsafe ASCII character, where that gives the same.
    """
    head = _joined((vendor, app, op, *ids), _PLAIN_JOINED, "")
    if not options:
        return head
    return f"{head}:{_joined(options, _PLAIN_JOINED_OPTIONS, '=')}"


def invalid_item_key(raw: bytes) -> str:
    return "invalid:" + hashlib.sha256(raw).hexdigest()[:32]


@dataclass(slots=True, kw_only=True, init=False)
class Item:
    """One message or one conversation to act on, from one job row.

    `ids` name the target; `options` (`name=value`) are the row's fields that change what the
    vendor does to it, so the same target with other options is another item. `batch_key` names
    the items that may travel in one vendor call (one GoEasy conversation, one Yunxin
    `clear_message` value); `params` holds the vendor fields as the job row gave them.

    Treat it as frozen: nothing assigns to an Item once made. It is not frozen at run time
    because a job of millions of rows makes millions of them, and a frozen dataclass sets each
    field through object.__setattr__, at five times the cost of storing a plain slot.
    """

    job: str
    line: int
    index: int
    ref: str
    vendor: Vendor
    app: str
    op: Op
    target: str
    ids: tuple[str, ...]
    options: tuple[str, ...] = ()
    batch_key: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    sent_at: int | None = None
    """When the message was sent (ms since the epoch), where the row said: informational."""
    item_key: str = field(init=False, repr=False, compare=False)
    """The item's identity (SPEC §5 `item_key`), computed once."""

    def __init__(
        self,
        *,
        job: str,
        line: int,
        index: int,
        ref: str,
        vendor: Vendor,
        app: str,
        op: Op,
        target: str,
        ids: tuple[str, ...],
        options: tuple[str, ...] = (),
        batch_key: tuple[str, ...] = (),
        params: Mapping[str, Any] | None = None,
        sent_at: int | None = None,
    ) -> None:
        self.job = job
        self.line = line
        self.index = index
        self.ref = ref
        self.vendor = vendor
        self.app = app
        self.op = op
        self.target = target
        self.ids = ids
        self.options = options
        self.batch_key = batch_key
        self.params = {} if params is None else params
        self.sent_at = sent_at
        self.item_key = make_item_key(vendor, app, op, ids, options)

    @property
    def lane(self) -> LaneKey:
        return LaneKey(vendor=self.vendor, app=self.app)


def keyed_item(
    job: str,
    line: int,
    index: int,
    ref: str,
    vendor: Vendor,
    app: str,
    op: Op,
    target: str,
    ids: tuple[str, ...],
    options: tuple[str, ...],
    batch_key: tuple[str, ...],
    params: Mapping[str, Any],
    item_key: str,
) -> Item:
    """An Item whose caller made its key, which must be `make_item_key(vendor, app, op, ids,
    options)` to the byte: job intake's typed path joins parts it has checked need no quoting."""
    item: Item = _new(Item)
    item.job = job
    item.line = line
    item.index = index
    item.ref = ref
    item.vendor = vendor
    item.app = app
    item.op = op
    item.target = target
    item.ids = ids
    item.options = options
    item.batch_key = batch_key
    item.params = params
    item.sent_at = None
    item.item_key = item_key
    return item


_new = object.__new__


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidRow:
    """A job row that could not be used; it becomes one `invalid` result row."""

    job: str
    line: int
    ref: str
    vendor: str
    app: str
    op: str
    problem: str
    raw: bytes

    @property
    def item_key(self) -> str:
        return invalid_item_key(self.raw)


@dataclass(frozen=True, slots=True, order=True, kw_only=True)
class LaneKey:
    vendor: Vendor
    app: str

    def __str__(self) -> str:
        return f"{self.vendor}.{self.app}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """Items that travel together in one vendor request (retries keep the call_id)."""

    call_id: str
    lane: LaneKey
    op: Op
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemOutcome:
    """What the vendor said about one item of a call."""

    status: Status
    error: str = ""
    message: str = ""
    http_status: int | None = None
    vendor_code: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultRow:
    """One row of the results file (SPEC §5 columns, in order)."""

    job: str
    line: int
    index: int
    ref: str
    vendor: str
    app: str
    op: str
    target: str
    item_key: str
    status: Status
    error: str
    message: str
    http_status: int | None
    vendor_code: str
    attempts: int
    call_id: str
    finished_at: str


RESULT_COLUMNS: tuple[str, ...] = (
    "job",
    "line",
    "index",
    "ref",
    "vendor",
    "app",
    "op",
    "target",
    "item_key",
    "status",
    "error",
    "message",
    "http_status",
    "vendor_code",
    "attempts",
    "call_id",
    "finished_at",
)
