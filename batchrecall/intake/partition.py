"""A job's rows as the one pass that plans it left them: each lane's items in a file of their own,
the rows written without sending (invalid rows, repeats) in another, in row order.

The run sends from these files instead of reading the job again: every lane's work is there from
the start, whatever the order of the job's rows, and a lane reads its file at its own pace. The
files live in a temporary folder, removed on `close()`, when the partition is collected, or at
exit, whichever comes first.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from batchrecall.models import InvalidRow, Item, LaneKey, Op, Vendor

_INVALID, _REPEAT = "i", "d"


class Partition:
    """Written by the plan's pass (`add_*`, then `finish()`), then read by the run."""

    def __init__(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="batchrecall-job-"))
        self.folder = folder
        self._cleanup = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self._files: dict[LaneKey, IO[bytes]] = {}
        self._jobs: dict[str, int] = {}
        """Job names by their number: an item's line names its job by number."""
        self._paths: dict[LaneKey, Path] = {}
        self.lane_items: Counter[LaneKey] = Counter()
        """Items each lane's file holds (each to send once)."""
        self._rows_path = folder / "rows.jsonl"
        self._rows: IO[bytes] | None = self._rows_path.open("wb")
        self.rows = 0
        """Rows written without sending: invalid rows and repeats."""
        self.kept_statuses: Counter[str] = Counter()
        """Items an earlier run settled (resume), by their status: no row, only counted."""
        self.kept_duplicates = 0
        """Repeats of items an earlier run settled."""

    # -- the pass ----------------------------------------------------------------------------

    def add_item(self, item: Item) -> None:
        lane = item.lane
        file = self._files.get(lane)
        if file is None:
            path = self.folder / f"lane-{len(self._paths)}.jsonl"
            self._paths[lane] = path
            file = self._files[lane] = path.open("wb")
        file.write(orjson.dumps(self._item_fields(item)) + b"\n")
        self.lane_items[lane] += 1

    def add_invalid(self, row: InvalidRow) -> None:
        fields = [row.job, row.line, row.ref, row.vendor, row.app, row.op, row.problem]
        self._add_row([_INVALID, *fields, row.raw.decode("latin-1")])

    def add_repeat(self, item: Item) -> None:
        self._add_row([_REPEAT, item.vendor, item.app, *self._item_fields(item)])

    def kept(self, status: str, *, repeat: bool) -> None:
        if repeat:
            self.kept_duplicates += 1
        else:
            self.kept_statuses[status] += 1

    def finish(self) -> None:
        """The pass is over: every file is complete."""
        for file in self._files.values():
            file.close()
        self._files.clear()
        if self._rows is not None:
            self._rows.close()
            self._rows = None

    # -- the run -----------------------------------------------------------------------------

    @property
    def lanes(self) -> list[LaneKey]:
        return sorted(self._paths)

    def lane_source(self, lane: LaneKey) -> LaneSource:
        return LaneSource(lane, self._paths[lane], self.lane_items[lane], list(self._jobs))

    def written_rows(self) -> Iterator[Item | InvalidRow]:
        """The rows to write without sending, in row order: InvalidRows and repeated Items."""
        jobs = list(self._jobs)
        with self._rows_path.open("rb") as file:
            for line in file:
                fields = orjson.loads(line)
                if fields[0] == _INVALID:
                    job, number, ref, vendor, app, op, problem, raw = fields[1:]
                    yield InvalidRow(
                        job=job,
                        line=number,
                        ref=ref,
                        vendor=vendor,
                        app=app,
                        op=op,
                        problem=problem,
                        raw=raw.encode("latin-1"),
                    )
                else:
                    lane = LaneKey(vendor=Vendor(fields[1]), app=fields[2])
                    yield _item(lane, fields[3:], jobs)

    def close(self) -> None:
        self.finish()
        self._cleanup()

    def _item_fields(self, item: Item) -> list[Any]:
        job = self._jobs.setdefault(item.job, len(self._jobs))
        return [
            item.op,
            job,
            item.line,
            item.index,
            item.ref,
            item.target,
            item.ids,
            item.options,
            item.batch_key,
            item.params,
        ]

    def _add_row(self, fields: list[Any]) -> None:
        assert self._rows is not None, "the pass is over"
        self._rows.write(orjson.dumps(fields) + b"\n")
        self.rows += 1


class LaneSource:
    """One lane's items, read in order as the lane asks for them."""

    def __init__(self, lane: LaneKey, path: Path, items: int, jobs: list[str]) -> None:
        self.lane = lane
        self._jobs = jobs
        self.remaining = items
        """Items not read yet."""
        self._file: IO[bytes] | None = path.open("rb") if items else None

    def read(self, count: int) -> list[Item]:
        """Up to `count` more items; none once every item was read (or the rest dropped)."""
        items: list[Item] = []
        file = self._file
        while file is not None and len(items) < count:
            line = file.readline()
            if not line:
                self.close()
                break
            items.append(_item(self.lane, orjson.loads(line), self._jobs))
            self.remaining -= 1
        if not self.remaining:
            self.close()
        return items

    def drop_rest(self) -> int:
        """Read no more: the items not read stay to do (without a row). Returns how many."""
        self.close()
        dropped, self.remaining = self.remaining, 0
        return dropped

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _item(lane: LaneKey, fields: list[Any], jobs: list[str]) -> Item:
    op, job, line, index, ref, target, ids, options, batch_key, params = fields
    return Item(
        job=jobs[job],
        line=line,
        index=index,
        ref=ref,
        vendor=lane.vendor,
        app=lane.app,
        op=Op(op),
        target=target,
        ids=tuple(ids),
        options=tuple(options),
        batch_key=tuple(batch_key),
        params=params,
    )
