"""A lane's calls still to send, planned from the lane's part of the job as the lane asks.

The plan's pass left each lane's items in a file of its own (`intake.partition`): the lane reads
it at its own pace, a few items at a time, through its planner, so a lane far behind keeps its
work on disk and memory stays flat however long the job. What it read and did not send yet (its
`held()` calls) is all it holds in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from batchrecall.intake.partition import LaneSource
from batchrecall.intake.planner import Planner
from batchrecall.models import Call, LaneKey

_READ_AT_ONCE = 64
"""Items read from the lane's file at a time while no call is ready."""


class Backlog:
    """First in, first out; `len()` counts items (not calls) still to send, read or not."""

    def __init__(
        self, lane: LaneKey, source: LaneSource | None = None, planner: Planner | None = None
    ) -> None:
        self._lane = lane
        self._source = source
        self._planner = planner
        self._memory: deque[Call] = deque()
        self._in_memory = 0
        self.dropped = 0
        """Items left in the file when the run stopped reading it (left to do, no row)."""

    def __len__(self) -> int:
        return self._in_memory + self.buffered + self.unread

    @property
    def unread(self) -> int:
        return self._source.remaining if self._source is not None else 0

    @property
    def buffered(self) -> int:
        return self._planner.buffered if self._planner is not None else 0

    def push(self, call: Call) -> None:
        self._memory.append(call)
        self._in_memory += len(call.items)

    def pop(self) -> Call | None:
        if not self._memory:
            self._refill()
        if not self._memory:
            return None
        call = self._memory.popleft()
        self._in_memory -= len(call.items)
        return call

    def drop_unread(self) -> None:
        """Read no more of the lane's file: what is still in it stays to do, without a row."""
        if self._source is not None:
            self.dropped += self._source.drop_rest()

    def drain(self) -> Iterator[Call]:
        """Every call still to send, oldest first, read on to the end of the lane's file unless
        `drop_unread()` is called meanwhile (the queue is empty afterwards)."""
        while (call := self.pop()) is not None:
            yield call

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
        if self._planner is not None:
            self._planner.close()

    def _refill(self) -> None:
        source, planner = self._source, self._planner
        if source is None or planner is None:
            return
        while not self._memory and source.remaining:
            for item in source.read(_READ_AT_ONCE):
                for call in planner.add(item):
                    self.push(call)
        if not self._memory:  # the file is read (or dropped): the partly filled calls leave
            for call in planner.flush():
                self.push(call)
