"""`collect yunxin --idle-before T --account USER...`: the accounts' conversations whose last
message is older than T as delete_conversation rows; Easemob and GoEasy refuse it (exit 2)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.emulators.server import EmulatorSet
from batchrecall.intake.reader import read_job
from batchrecall.models import Item
from tests.collect_server import served

DAY = 86400.0


def test_idle_conversations_become_delete_rows(tmp_path: Path) -> None:
    now = time.time()
    emulators = EmulatorSet()
    state = emulators.yunxin.state
    state.add_message("alice|1|bob", 1, sent_at=now - 10 * DAY)
    state.add_message("carol|1|alice", 2, sent_at=now - 9 * DAY)
    state.add_conversation("alice|1|carol")  # its last message is carol's, 9 days old
    state.add_message("alice|1|erin", 3, sent_at=now - 10 * DAY)
    state.add_message("erin|1|alice", 4, sent_at=now - 1 * DAY)  # erin answered yesterday
    state.add_message("bob|2|team-1", 5, sent_at=now - 40 * DAY)
    state.add_conversation("alice|2|team-1")
    state.add_conversation("alice|1|dave")  # no message: no time to judge it by
    for n in range(120):  # more than a page of recent ones
        state.add_message(f"alice|1|friend-{n}", 100 + n, sent_at=now - 3600)
    out = tmp_path / "idle.jsonl"
    with served(emulators, tmp_path / "c.toml"):
        code = main(["collect", "yunxin", "--config", str(tmp_path / "c.toml"), "--out", str(out),
                     "--idle-before", "7d", "--account", "alice"])  # fmt: skip
    assert code == 0
    found = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(r["conversation_id"] for r in found) == [
        "alice|1|bob", "alice|1|carol", "alice|2|team-1"]  # fmt: skip
    assert all(r["op"] == "delete_conversation" for r in found)
    assert all(isinstance(item, Item) for item in read_job(out))
    pages = [r for r in emulators.yunxin.log if r.path == "/im/v2.1/conversations"]
    assert len(pages) == 2


@pytest.mark.parametrize(
    ("vendor", "args", "words"),
    [("easemob", ["--account", "a"], "not supported for Easemob"),
     ("goeasy", ["--account", "a"], "not supported for GoEasy"),
     ("yunxin", [], "needs --account"),
     ("yunxin", ["--account", "a", "--sender", "s"], "does not take --sender"),
     ("yunxin", ["--account", "a", "--since", "1h"], "does not take --since")],
)  # fmt: skip
def test_retention_options(
    tmp_path: Path, capsys: Any, vendor: str, args: list[str], words: str
) -> None:
    code = main(["collect", vendor, "--idle-before", "7d", *args])
    assert code == 2
    assert words in capsys.readouterr().err


def test_account_without_idle_before(capsys: Any) -> None:
    code = main(["collect", "yunxin", "--account", "a", "--sender", "s", "--since", "1h"])
    assert code == 2
    assert "--account goes with --idle-before" in capsys.readouterr().err
