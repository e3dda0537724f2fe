"""Turning outcomes into result rows: the writer, the summary, progress and the halt rule."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from batchrecall.config import RunSettings
from batchrecall.errors import LANE_STOPPING_CODES, CallError, ErrorCode
from batchrecall.models import InvalidRow, Item, ItemOutcome, LaneKey, ResultRow, Status
from batchrecall.redact import redact
from batchrecall.results.store import ResultsWriter, utc_now
from batchrecall.results.summary import Summary

_SENT_STATUSES = frozenset({Status.OK, Status.NOT_FOUND, Status.FAILED, Status.UNKNOWN})
_STOP_MESSAGES = {
    ErrorCode.HALTED: "not sent: the run halted on its failure rate",
    ErrorCode.INTERRUPTED: "not sent: the run was interrupted",
}


@dataclass(frozen=True, slots=True)
class LaneState:
    """What a lane is doing, for the progress display and the progress log."""

    kind: Literal["sending", "throttled", "pacing", "stopped", "done"]
    until: float | None = None
    """Wall-clock time (`time.time()`) a throttle pause ends at."""
    reason: str = ""
    """Why a stopped lane stopped (an error code)."""


class ProgressSink:
    """Receives progress as a run goes on; the terminal display and the progress log implement
    it. Every method is called from the run's event loop and must return at once."""

    def rows_written(self, lane: LaneKey | None, status: Status, count: int) -> None:
        """Rows for `count` items were written with `status`; `lane` is None for invalid rows."""

    def call_sent(self, lane: LaneKey) -> None:
        """A request of this lane left (calls/s against the lane's rate)."""

    def lane_state(self, lane: LaneKey, state: LaneState) -> None:
        """A lane changed state: sending, throttled until ..., paused for pacing, stopped, done."""

    def stopping(self, in_flight: int) -> None:
        """The first Ctrl-C (or SIGTERM): the run stops sending; `in_flight` calls finish."""


def outcome_of(exc: CallError, status: Status) -> ItemOutcome:
    return ItemOutcome(
        status=status,
        error=str(exc.code),
        message=exc.message,
        http_status=exc.http_status,
        vendor_code=exc.vendor_code,
    )


@dataclass
class Recorder:
    """Writes every row of a run and counts it; asks for a halt when too many items fail."""

    writer: ResultsWriter
    summary: Summary
    run_settings: RunSettings
    on_halt: Callable[[], None]
    progress: ProgressSink
    _decided: int = 0
    _failed: int = 0

    def finish(
        self, items: Sequence[Item], outcome: ItemOutcome, attempts: int, call_id: str
    ) -> None:
        """Rows for items the vendor answered about (or that ran out of attempts)."""
        self.write(
            items,
            outcome.status,
            outcome.error,
            outcome.message,
            http_status=outcome.http_status,
            vendor_code=outcome.vendor_code,
            attempts=attempts,
            call_id=call_id,
        )
        # The halt rate counts what the vendor answered about the items themselves; a lane
        # stopped on its credentials, service or plan says nothing about them.
        if outcome.status in _SENT_STATUSES and outcome.error not in LANE_STOPPING_CODES:
            self._decided += len(items)
            if outcome.status in (Status.FAILED, Status.UNKNOWN):
                self._failed += len(items)
            self._check_halt()

    def finish_each(
        self, settled: Sequence[tuple[Item, ItemOutcome]], attempts: int, call_id: str
    ) -> None:
        """Rows for the items of one answer, each with its own outcome: one write for them all
        (a 30-item call is one write and one flush, not 30)."""
        if not settled:
            return
        now = utc_now()
        redacted: dict[str, str] = {}
        rows = []
        counts: Counter[tuple[LaneKey, Status]] = Counter()
        for item, outcome in settled:
            message = redacted.get(outcome.message)
            if message is None:
                message = redacted[outcome.message] = redact(outcome.message)
            rows.append(
                _row(
                    item,
                    outcome.status,
                    outcome.error,
                    message,
                    http_status=outcome.http_status,
                    vendor_code=redact(outcome.vendor_code),
                    attempts=attempts,
                    call_id=call_id,
                    finished_at=now,
                )
            )
            counts[item.lane, outcome.status] += 1
            if outcome.status in _SENT_STATUSES and outcome.error not in LANE_STOPPING_CODES:
                self._decided += 1
                self._failed += outcome.status in (Status.FAILED, Status.UNKNOWN)
        self._emit(rows)
        for (lane, status), count in counts.items():
            self.progress.rows_written(lane, status, count)
        self._check_halt()

    def _check_halt(self) -> None:
        settings = self.run_settings
        if self._decided < settings.halt_min_items:
            return
        if self._failed / self._decided > settings.halt_failure_rate:
            self.on_halt()

    def failed_before(
        self, items: Sequence[Item], error: CallError, attempts: int, call_id: str
    ) -> None:
        """Items sent before that will not be sent again: their last answer is their outcome."""
        self.finish(items, outcome_of(error, Status.FAILED), attempts, call_id)

    def lane_stopped(self, items: Sequence[Item], lane: LaneKey, code: str) -> None:
        message = f"not sent: lane {lane} stopped on {code}"
        self.write(items, Status.SKIPPED, ErrorCode.LANE_STOPPED, message)

    def stopped(self, items: Sequence[Item], reason: ErrorCode | None) -> None:
        reason = reason or ErrorCode.INTERRUPTED
        self.write(items, Status.SKIPPED, reason, _STOP_MESSAGES[reason])

    def duplicate(self, item: Item) -> None:
        self.write([item], Status.SKIPPED, ErrorCode.DUPLICATE, "same item earlier in this run")

    def invalid(self, row: InvalidRow) -> None:
        result = ResultRow(
            job=row.job,
            line=row.line,
            index=0,
            ref=row.ref,
            vendor=row.vendor,
            app=row.app,
            op=row.op,
            target="",
            item_key=row.item_key,
            status=Status.INVALID,
            error=ErrorCode.INVALID_ROW,
            message=redact(f"line {row.line}: {row.problem}"),
            http_status=None,
            vendor_code="",
            attempts=0,
            call_id="",
            finished_at=utc_now(),
        )
        self._emit([result])
        self.progress.rows_written(None, Status.INVALID, 1)

    def write(
        self,
        items: Sequence[Item],
        status: Status,
        error: str,
        message: str,
        *,
        http_status: int | None = None,
        vendor_code: str = "",
        attempts: int = 0,
        call_id: str = "",
    ) -> None:
        now = utc_now()
        # A vendor may echo a credential back in its error text: results never hold one.
        message, vendor_code = redact(message), redact(vendor_code)
        rows = [
            _row(
                item,
                status,
                error,
                message,
                http_status=http_status,
                vendor_code=vendor_code,
                attempts=attempts,
                call_id=call_id,
                finished_at=now,
            )
            for item in items
        ]
        self._emit(rows)
        lanes = Counter(item.lane for item in items)
        for lane, count in lanes.items():
            self.progress.rows_written(lane, status, count)

    def _emit(self, rows: list[ResultRow]) -> None:
        self.writer.write(rows)
        for row in rows:
            self.summary.add(row)


def _row(
    item: Item,
    status: Status,
    error: str,
    message: str,
    *,
    http_status: int | None,
    vendor_code: str,
    attempts: int,
    call_id: str,
    finished_at: str,
) -> ResultRow:
    return ResultRow(
        job=item.job,
        line=item.line,
        index=item.index,
        ref=item.ref,
        vendor=item.vendor,
        app=item.app,
        op=item.op,
        target=item.target,
        item_key=item.item_key,
        status=status,
        error=error,
        message=message,
        http_status=http_status,
        vendor_code=vendor_code,
        attempts=attempts,
        call_id=call_id,
        finished_at=finished_at,
    )
