"""A lane's queue of calls waiting to be sent: in memory up to a size, then in a temporary file.

The job is read once for every lane, so a slow lane's calls pile up while the reader looks for a
fast lane's work; past `memory_items` items they go to an append-only file and come back in
order, so memory stays flat however far a lane falls behind.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from batchrecall.models import Call, Item, LaneKey, Op

DEFAULT_MEMORY_ITEMS = 2_000


class Backlog:
    """First in, first out; `len()` counts items (not calls), wherever they are kept."""

    def __init__(self, lane: LaneKey, *, memory_items: int = DEFAULT_MEMORY_ITEMS) -> None:
        self._lane = lane
        self._memory_items = memory_items
        self._memory: deque[Call] = deque()
        self._in_memory = 0
        self._spilled = 0
        self._spilled_calls = 0
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._read_at = 0

    def __len__(self) -> int:
        return self._in_memory + self._spilled

    @property
    def spilled(self) -> int:
        """Items kept on disk now."""
        return self._spilled

    def push(self, call: Call) -> None:
        if self._spilled_calls == 0 and self._in_memory < self._memory_items:
            self._memory.append(call)
            self._in_memory += len(call.items)
            return
        self._spill(call)

    def pop(self) -> Call | None:
        if not self._memory and self._spilled_calls:
            self._refill()
        if not self._memory:
            return None
        call = self._memory.popleft()
        self._in_memory -= len(call.items)
        return call

    def drain(self) -> Iterator[Call]:
        """Every call still queued, oldest first (the queue is empty afterwards)."""
        while (call := self.pop()) is not None:
            yield call

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None

    def _spill(self, call: Call) -> None:
        if self._file is None:
            handle, name = tempfile.mkstemp(prefix="batchrecall-backlog-", suffix=".jsonl")
            os.close(handle)
            self._path = Path(name)
            self._file = self._path.open("w+b")
            self._read_at = 0
        self._file.seek(0, os.SEEK_END)
        self._file.write(orjson.dumps(_encode(call)) + b"\n")
        self._spilled += len(call.items)
        self._spilled_calls += 1

    def _refill(self) -> None:
        assert self._file is not None
        self._file.flush()
        self._file.seek(self._read_at)
        while self._spilled_calls and self._in_memory < self._memory_items:
            line = self._file.readline()
            call = _decode(self._lane, orjson.loads(line))
            self._memory.append(call)
            self._in_memory += len(call.items)
            self._spilled -= len(call.items)
            self._spilled_calls -= 1
        self._read_at = self._file.tell()
        if not self._spilled_calls:  # everything came back: start the file afresh
            self._file.seek(0)
            self._file.truncate()
            self._read_at = 0


def _encode(call: Call) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "op": call.op,
        "items": [
            [
                item.job,
                item.line,
                item.index,
                item.ref,
                item.target,
                item.ids,
                item.options,
                item.batch_key,
                item.params,
            ]
            for item in call.items
        ],
    }


def _decode(lane: LaneKey, data: dict[str, Any]) -> Call:
    op = Op(data["op"])
    items = tuple(
        Item(
            job=job,
            line=line,
            index=index,
            ref=ref,
            vendor=lane.vendor,
            app=lane.app,
            op=op,
            target=target,
            ids=tuple(ids),
            options=tuple(options),
            batch_key=tuple(batch_key),
            params=params,
        )
        for job, line, index, ref, target, ids, options, batch_key, params in data["items"]
    )
    return Call(call_id=data["call_id"], lane=lane, op=op, items=items)
