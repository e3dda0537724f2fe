"""Progress as log events, for runs without a terminal (nohup, CI) or with `--no-progress`:
one `batchrecall.progress` event every 10 s with counts, rates and ETAs, so such a run shows
life in its log."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import structlog

from batchrecall.cli.tracking import LaneSnapshot, RunTracker, TrackedProgress, stopping_line
from batchrecall.results.manifest import utc_iso

LOG_INTERVAL_S = 10.0
_HEARTBEAT_S = 1.0

log = structlog.get_logger("batchrecall")


def _lane_fields(lane: LaneSnapshot) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "done": lane.done,
        "total": lane.total,
        "statuses": dict(+lane.statuses),
        "items_per_s": round(lane.items_per_s, 1),
        "rate": lane.rate,
        "eta_s": round(lane.eta_s),
        "state": lane.state,
    }
    if lane.calls_per_s is not None:
        fields["calls_per_s"] = round(lane.calls_per_s, 1)
    if lane.until is not None:
        fields["throttled_until"] = utc_iso(lane.until)
    if lane.reason:
        fields["reason"] = lane.reason
    return fields


class LogProgress(TrackedProgress):
    """Logs the run's progress every `interval` seconds of the tracker's clock.

    `tick()` decides; a heartbeat thread calls it once a second while the context is open, so
    an event comes even while every lane waits. Tests call `tick()` themselves on a fake clock.
    `say` prints the one line a first Ctrl-C owes the operator (None: the log alone says it).
    """

    def __init__(
        self,
        tracker: RunTracker,
        *,
        interval: float = LOG_INTERVAL_S,
        say: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(tracker)
        self.interval = interval
        self._say = say
        self._last = tracker.clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> bool:
        """Log an event if `interval` passed since the last one; True when it did."""
        now = self.tracker.clock()
        if now - self._last < self.interval:
            return False
        self._last = now
        self.emit()
        return True

    def emit(self) -> None:
        lanes = self.tracker.lanes()
        overall = self.tracker.overall(lanes)
        log.info(
            "batchrecall.progress",
            done=overall.done,
            total=overall.total,
            percent=round(100 * overall.fraction, 1),
            statuses=dict(+overall.statuses),
            items_per_s=round(overall.items_per_s, 1),
            eta_s=round(overall.eta_s),
            elapsed_s=round(self.tracker.elapsed_s(), 1),
            lanes={lane.name: _lane_fields(lane) for lane in lanes},
        )

    def __enter__(self) -> LogProgress:
        self._thread = threading.Thread(target=self._beat, name="progress-log", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(_HEARTBEAT_S):
            self.tick()

    def announce_stop(self, in_flight: int) -> None:
        message = stopping_line(in_flight)
        log.warning("batchrecall.draining", in_flight=in_flight, message=message)
        if self._say is not None:
            self._say(message)
