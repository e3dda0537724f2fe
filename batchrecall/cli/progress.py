"""Terminal progress while a run goes on (rich), fed by the engine's ProgressSink calls."""

from __future__ import annotations

from collections import Counter
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from batchrecall.models import LaneKey, Status
from batchrecall.results.recorder import LaneState, ProgressSink


class TerminalProgress(ProgressSink):
    """Items done of the total, rate, ETA, and throttle pauses per lane."""

    def __init__(self, total: int, console: Console) -> None:
        self._throttles: Counter[str] = Counter()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} items/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[throttles]}"),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("items", total=total, rate="-", throttles="")

    def __enter__(self) -> TerminalProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def rows_written(self, lane: LaneKey | None, status: Status, count: int) -> None:
        task = self._progress.tasks[0]
        speed = task.speed
        self._progress.update(self._task, advance=count, rate=f"{speed:.0f}" if speed else "-")

    def lane_state(self, lane: LaneKey, state: LaneState) -> None:
        if state.kind != "throttled":
            return
        self._throttles[str(lane)] += 1
        text = " ".join(f"{k} throttled x{n}" for k, n in sorted(self._throttles.items()))
        self._progress.update(self._task, throttles=text)
