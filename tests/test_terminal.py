"""`batchrecall run` on a real pseudo-terminal (tmux) at 80 and 120 columns: the progress display,
and Ctrl-C or end of input at the confirmation prompt."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux)"),
]
DEADLINE_S = 60.0


class Pane:
    """A command in a detached tmux session of its own server, `width` columns wide."""

    def __init__(self, tmp: Path, command: list[str], width: int, height: int = 40) -> None:
        self.socket = f"br-{uuid.uuid4().hex[:8]}"
        self.width = width
        self.exit_file = tmp / "exit-code"
        shell = f"{shlex.join(command)}; echo $? > {shlex.quote(str(self.exit_file))}; sleep 600"
        env = {**os.environ, "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d",
             "-x", str(width), "-y", str(height), "-c", str(tmp), shell],
            check=True,
            env=env,
        )  # fmt: skip

    def lines(self) -> list[str]:
        """The screen, wrapped lines joined: a line wider than the pane was wrapped."""
        done = subprocess.run(
            ["tmux", "-L", self.socket, "capture-pane", "-p", "-J", "-S", "-100"],
            capture_output=True,
            text=True,
            check=True,
        )
        return [line.rstrip() for line in done.stdout.splitlines()]

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.socket, "send-keys", *keys], check=True)

    def wait_for(self, predicate: Callable[[list[str]], bool], what: str) -> list[str]:
        end = time.monotonic() + DEADLINE_S
        while True:
            lines = self.lines()
            if predicate(lines):
                return lines
            if time.monotonic() > end:
                pytest.fail(f"timed out waiting for {what}:\n" + "\n".join(lines))
            time.sleep(0.05)

    def exit_code(self) -> int:
        self.wait_for(
            lambda _: self.exit_file.exists() and bool(self.exit_file.read_text()), "exit"
        )
        return int(self.exit_file.read_text())

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], check=False)


@pytest.fixture
def pane_factory(tmp_path: Path) -> Iterator[Callable[[list[str], int], Pane]]:
    panes: list[Pane] = []

    def start(command: list[str], width: int) -> Pane:
        pane = Pane(tmp_path, command, width)
        panes.append(pane)
        return pane

    yield start
    for pane in panes:
        pane.close()


def _job(tmp_path: Path) -> Path:
    """Three lanes of a few seconds at the default rates, a repeat and a bad row."""
    rows: list[dict[str, object]] = [
        {"vendor": "easemob", "op": "recall", "msg_id": str(10**18 + i), "to": "u",
         "chat_type": "chat"}
        for i in range(60)
    ]  # fmt: skip
    rows += [
        {"vendor": "goeasy", "op": "recall", "groupId": f"g{i}", "messages": [i * 10, i * 10 + 1]}
        for i in range(1, 16)
    ]
    rows += [
        {"vendor": "yunxin", "op": "recall", "conversation_id": "a|1|b",
         "message_server_id": str(5000 + i)}
        for i in range(150)
    ]  # fmt: skip
    rows.insert(5, rows[0])
    rows.insert(9, {"vendor": "yunxin", "op": "recall"})
    path = tmp_path / "job.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "batchrecall", *args]


def _progress_lines(lines: list[str]) -> list[str]:
    start = next((i for i, line in enumerate(lines) if line.startswith("all lanes ")), None)
    return [] if start is None else lines[start : start + 4]


@pytest.mark.parametrize("width", [80, 120])
def test_progress_display_at_80_and_120_columns(
    tmp_path: Path, pane_factory: Callable[[list[str], int], Pane], width: int
) -> None:
    job = _job(tmp_path)
    pane = pane_factory(_cli("run", str(job), "--emulate", "--yes"), width)

    def running(lines: list[str]) -> bool:
        shown = _progress_lines(lines)
        return len(shown) == 4 and "100%" not in shown[0] and "yunxin" in shown[3]

    during = _progress_lines(pane.wait_for(running, "the display while the run goes on"))
    assert pane.exit_code() == 1  # the bad row
    after = pane.lines()
    final = _progress_lines(after)
    for line in during + final:
        assert len(line) <= width, f"wrapped at {width} columns: {line!r}"
        assert "━━━━━━━━" in line
        assert "ETA " in line
        assert "✓" in line
        assert "✗" in line
    assert [line.split()[0] for line in final] == [
        "all", "easemob.default", "goeasy.default", "yunxin.default"
    ]  # fmt: skip
    # Invalid rows and duplicates advance the bar: a finished run ends at 100 %.
    assert "242/242 100%" in final[0]
    assert "61/61 100%" in final[1]  # 60 items and the repeat
    assert "30/30 100%" in final[2]
    assert "150/150 100%" in final[3]
    assert all(line.endswith("done") for line in final)
    if width >= 120:
        assert "items/s" in final[0]
    summary = next(line for line in after if line.startswith("Summary: "))
    assert summary.startswith("Summary: 240 items (and 1 invalid row, 1 duplicate)")
    assert not any("Traceback" in line for line in after)


@pytest.mark.parametrize(
    ("key", "code", "said"),
    [("C-c", 130, "Nothing was sent."), ("C-d", 2, "Nothing was sent (no answer).")],
)
def test_ctrl_c_or_end_of_input_at_the_prompt_is_a_no(
    tmp_path: Path,
    pane_factory: Callable[[list[str], int], Pane],
    key: str,
    code: int,
    said: str,
) -> None:
    job = _job(tmp_path)
    pane = pane_factory(_cli("run", str(job), "--emulate"), 80)
    pane.wait_for(lambda lines: any("Type 'yes'" in line for line in lines), "the prompt")
    pane.keys(key)
    assert pane.exit_code() == code
    lines = pane.lines()
    assert said in lines
    assert not any("Traceback" in line for line in lines)
    assert not (tmp_path / "job.results.jsonl").exists()
