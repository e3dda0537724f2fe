"""Dedupe items and group them into vendor calls no larger than each vendor's batch limit."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from batchrecall.keystore import KeyStore
from batchrecall.models import Call, Item, LaneKey, Op

GroupKey = tuple[LaneKey, Op, tuple[str, ...]]
Target = tuple[LaneKey, Op, tuple[str, ...]]


@dataclass
class Planner:
    """Streams items in, calls out: a call leaves as soon as it is full.

    Partly filled groups wait for more items of the same conversation, but never more than
    `max_buffered` items in all: past that the oldest group leaves early, so memory stays flat.
    """

    limit: Callable[[Item], int]
    run_id: str
    max_buffered: int = 20_000
    _seen: KeyStore = field(default_factory=KeyStore)
    _groups: OrderedDict[GroupKey, list[Item]] = field(default_factory=OrderedDict)
    _buffered: int = 0
    _waiting: dict[Target, GroupKey] = field(default_factory=dict)
    """The group each waiting target is in: the same target with other options (another item)
    must leave after it, in row order."""
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    """Call numbers; planners of one run share one counter so that call ids stay unique."""

    @property
    def buffered(self) -> int:
        """Items added and not yet in a call."""
        return self._buffered

    def is_duplicate(self, item: Item) -> bool:
        """True if an item of the same identity came earlier in this run (records it if not)."""
        return not self._seen.add_new(item.item_key)

    def close(self) -> None:
        self._seen.close()

    def add(self, item: Item) -> Iterator[Call]:
        key: GroupKey = (item.lane, item.op, item.batch_key)
        target: Target = (item.lane, item.op, item.ids)
        earlier = self._waiting.get(target)
        if earlier is not None and earlier != key:
            yield self._emit(earlier)  # the same target, asked earlier with other options
        self._waiting[target] = key
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = []
        group.append(item)
        self._buffered += 1
        if len(group) >= self.limit(item):
            yield self._emit(key)
        while self._buffered > self.max_buffered:
            yield self._emit(next(iter(self._groups)))

    def flush(self) -> Iterator[Call]:
        while self._groups:
            yield self._emit(next(iter(self._groups)))

    def new_call_id(self) -> str:
        return f"{self.run_id}-{next(self.numbers):06d}"

    def _emit(self, key: GroupKey) -> Call:
        items = self._groups.pop(key)
        self._buffered -= len(items)
        for item in items:
            target = (item.lane, item.op, item.ids)
            if self._waiting.get(target) == key:
                del self._waiting[target]
        return Call(call_id=self.new_call_id(), lane=key[0], op=key[1], items=tuple(items))
