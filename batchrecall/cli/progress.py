"""Terminal progress while a run goes on (rich): one bar for the run, one line per lane.

Each line holds its bar, done/total, ok and failed counts, calls/s against the lane's rate, its
ETA and its state. Columns are sized to the terminal: the state is cut short first and the bar
shrinks to its minimum before anything else, so counts and ETAs always show at 80 columns.
"""

from __future__ import annotations

import os
import sys
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from batchrecall.cli.tracking import LaneSnapshot, RunTracker, TrackedProgress, stopping_line
from batchrecall.models import Status

STATUS_STYLES: dict[str, str] = {
    Status.OK: "green",
    Status.NOT_FOUND: "cyan",
    Status.FAILED: "red",
    Status.UNKNOWN: "bright_red",
    Status.SKIPPED: "yellow",
    Status.INVALID: "magenta",
}
_BAR_MIN, _BAR_MAX = 8, 40
_STATE_STYLES = {
    "throttled": "yellow",
    "pacing": "cyan",
    "stopped": "bold red",
    "stopping": "bold yellow",
    "done": "green",
}


def short_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def state_forms(lane: LaneSnapshot) -> list[str]:
    """A lane's state in words, longest first: `throttled until 14:03:12`, `stopped: auth-failed`;
    the display takes the longest that fits."""
    if lane.state == "throttled" and lane.until is not None:
        at = time.strftime("%H:%M:%S", time.localtime(lane.until))
        return [f"throttled until {at}", f"throttled to {at}", "throttled"]
    if lane.state == "pacing":
        return ["paused for per-user pacing", "per-user pacing", "pacing"]
    if lane.state == "stopped":
        return [f"stopped: {lane.reason}", "stopped"] if lane.reason else ["stopped"]
    return [lane.state]


def compact(n: int) -> str:
    """12,345 as 12k, 1,234,567 as 1.2M: for narrow terminals."""
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


@dataclass(frozen=True, slots=True)
class _Cells:
    """A line's text cells; the tuples hold a full form and a compact one."""

    label: str
    count: tuple[str, str]
    outcome: tuple[str, str]
    speed: tuple[str, str]
    eta: str
    states: list[str]
    state_style: str


def _cells(lane: LaneSnapshot, *, overall: bool, indent: str) -> _Cells:
    percent = f"{lane.fraction:4.0%}"
    count = (
        f"{lane.done:,}/{lane.total:,} {percent}",
        f"{compact(lane.done)}/{compact(lane.total)} {percent}",
    )
    outcome = (
        f"✓{lane.settled:,} ✗{lane.failed:,}",
        f"✓{compact(lane.settled)} ✗{compact(lane.failed)}",
    )
    if overall or lane.calls_per_s is None:
        speed = (f"{lane.items_per_s:,.0f} items/s", f"{lane.items_per_s:,.0f}/s")
    else:
        measured = f"{lane.calls_per_s:,.0f}/{lane.rate:g}"
        speed = (f"{measured} calls/s", f"{measured}/s")
    eta = "ETA " + ("-" if lane.state == "stopped" else short_duration(lane.eta_s))
    return _Cells(
        label=indent + lane.name,
        count=count,
        outcome=outcome,
        speed=speed,
        eta=eta,
        states=state_forms(lane),
        state_style=_STATE_STYLES.get(lane.state, ""),
    )


def _bar(lane: LaneSnapshot, width: int) -> Text:
    """A bar coloured by what became of the items done so far."""
    text = Text()
    used = 0
    if lane.total > 0:
        for status, style in STATUS_STYLES.items():
            cells = min(round(width * lane.statuses[status] / lane.total), width - used)
            text.append("━" * cells, style=style)
            used += cells
    if lane.total and lane.done >= lane.total and used < width:
        text.append("━" * (width - used), style="green")  # rounding: a finished bar is full
        used = width
    text.append("━" * (width - used), style="grey30")
    return text


_MIN_STATE = 12
"""Below this much room for the state, a column gives way."""


@dataclass(frozen=True, slots=True)
class _Layout:
    speed: int | None
    """Which form of the speed: 0 long, 1 short, None hidden."""
    numbers: int = 0
    """Which form of the counts: 0 full, 1 compact."""
    outcome: bool = True


# As the terminal narrows, what gives way first: the speed (shortened, then hidden), then full
# numbers (12,345 becomes 12k), then the state's room, then the ok/failed counts. The label, the
# bar, done/total and the ETA always stay.
_LAYOUTS = (_Layout(0), _Layout(1), _Layout(None), _Layout(None, 1))
_LAST_RESORT = (_Layout(None, 1), _Layout(None, 1, outcome=False))


def render_lines(overall: LaneSnapshot, lanes: Sequence[LaneSnapshot], width: int) -> list[Text]:
    """The display's lines, none wider than `width`."""
    rows = [(_cells(overall, overall=True, indent=""), overall)]
    rows += [(_cells(lane, overall=False, indent="  "), lane) for lane in lanes]
    cells = [c for c, _ in rows]
    label_w = max(len(c.label) for c in cells)
    eta_w = max(len(c.eta) for c in cells)
    state_w = max(len(c.states[0]) for c in cells)

    def count_w(layout: _Layout) -> int:
        return max(len(c.count[layout.numbers]) for c in cells)

    def outcome_w(layout: _Layout) -> int:
        return max(len(c.outcome[layout.numbers]) for c in cells) + 1 if layout.outcome else 0

    def speed_w(layout: _Layout) -> int:
        return 0 if layout.speed is None else max(len(c.speed[layout.speed]) for c in cells) + 1

    def fixed(layout: _Layout) -> int:
        # label, count and ETA, and the spaces after the label, the bar and the count
        return label_w + count_w(layout) + eta_w + 3 + outcome_w(layout) + speed_w(layout)

    def state_fits(layout: _Layout) -> bool:
        return width - fixed(layout) - _BAR_MIN - 1 >= min(_MIN_STATE, state_w)

    layout = next((lay for lay in _LAYOUTS if state_fits(lay)), None)
    if layout is None:
        fits = (lay for lay in _LAST_RESORT if width - fixed(lay) >= _BAR_MIN)
        layout = next(fits, _LAST_RESORT[-1])
    room = width - fixed(layout)
    if room < _BAR_MIN:  # a very narrow terminal: the label gives way to the bar
        label_w = max(4, label_w - (_BAR_MIN - room))
        room = width - fixed(layout)
    bar_w = max(_BAR_MIN, min(_BAR_MAX, room - 1 - state_w))
    state_room = room - bar_w - 1
    lines = []
    for index, (cell, lane) in enumerate(rows):
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(_fit(cell.label, label_w).ljust(label_w), style="" if index else "bold")
        line.append(" ")
        line.append_text(_bar(lane, bar_w))
        line.append(" " + cell.count[layout.numbers].rjust(count_w(layout)) + " ")
        if layout.outcome:
            line.append(cell.outcome[layout.numbers].ljust(outcome_w(layout)))
        if layout.speed is not None:
            line.append(cell.speed[layout.speed].rjust(speed_w(layout) - 1) + " ")
        line.append(cell.eta.ljust(eta_w))
        if state_room >= 1:
            state = next((s for s in cell.states if len(s) <= state_room), cell.states[-1])
            line.append(" ")
            line.append(_fit(state, state_room), style=cell.state_style)
        line.truncate(width)
        lines.append(line)
    return lines


def _fit(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…"


class TerminalProgress(TrackedProgress):
    """The live display on a terminal; a context manager around the run."""

    def __init__(self, tracker: RunTracker, console: Console) -> None:
        super().__init__(tracker)
        self._console = console
        self._live = Live(
            get_renderable=self._renderable,
            console=console,
            refresh_per_second=4,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=True,  # what is written to stderr shows above the display
        )

    def _renderable(self) -> Group:
        lanes = self.tracker.lanes()
        overall = self.tracker.overall(lanes)
        return Group(*render_lines(overall, lanes, self._console.width))

    def __enter__(self) -> TerminalProgress:
        self._quiet_keys = _QuietKeys()
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.refresh()
        self._live.stop()
        self._quiet_keys.restore()

    def announce_stop(self, in_flight: int) -> None:
        self._console.print(stopping_line(in_flight), style="bold yellow", highlight=False)


class _QuietKeys:
    """While the display runs, keys typed (and the `^C` a Ctrl-C echoes) are not echoed: an
    echo moves the cursor under the display and leaves a stale copy of its first line."""

    def __init__(self) -> None:
        self._saved: list[Any] | None = None
        try:
            fd = sys.stdin.fileno()
            if not os.isatty(fd):
                return
            saved = termios.tcgetattr(fd)
            quiet = list(saved)
            quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
            termios.tcsetattr(fd, termios.TCSADRAIN, quiet)
            self._saved = saved
        except (OSError, ValueError, termios.error):  # no terminal (or not a file) on stdin
            self._saved = None

    def restore(self) -> None:
        if self._saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None
