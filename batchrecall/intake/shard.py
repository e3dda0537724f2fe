"""Sharded runs: which rows of a job belong to shard I of N.

A row's shard follows from its identity alone (never its line number or its neighbours), so the
same item lands in the same shard on every run, after the job file was edited or reordered, and
on every host. Items that may travel in one vendor call together (a GoEasy conversation's
timestamps) or that share a pacing window (one Easemob user's conversation deletes) share a
shard, so sharding costs no extra calls and no process paces a window another one also uses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from batchrecall.models import InvalidRow, Item, make_item_key


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count`, counted from 1 (`1/4` ... `4/4`)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: expected I/N with 1 <= I <= N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N`, e.g. `2/4`; a ValueError says what is wrong."""
        index, sep, count = text.strip().partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise ValueError(f"shard {text!r}: expected I/N, e.g. 2/4 (I from 1 to N)")
        return cls(int(index), int(count))

    @property
    def label(self) -> str:
        """How file names tell the shard: `shard-2-of-4`."""
        return f"shard-{self.index}-of-{self.count}"

    def contains(self, row: Item | InvalidRow) -> bool:
        return shard_of(row, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(row: Item | InvalidRow, count: int) -> int:
    """The shard (1 to `count`) a row belongs to."""
    digest = hashlib.blake2b(group_key(row).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count + 1


def group_key(row: Item | InvalidRow) -> str:
    """What keeps rows together: the part of an item's identity that its batch key shares.

    A GoEasy timestamp's batch key starts with its conversation, an Easemob conversation
    delete's with its username: those items stay together. Where a batch key names no part of
    the target (Easemob recalls batch freely; Yunxin conversation deletes batch by an option
    value, which would put nearly every item in one shard), each target goes its own way, its
    option variants together (a one-way, then a two-way recall of one message keep their row
    order only within one worker). Two rows of one item always share a shard, so duplicates are
    still found within it.
    """
    if isinstance(row, InvalidRow):
        return row.item_key
    shared: list[str] = []
    for part, batch_part in zip(row.ids, row.batch_key, strict=False):
        if part != batch_part:
            break
        shared.append(part)
    return make_item_key(row.vendor, row.app, row.op, tuple(shared) if shared else row.ids)
