"""`collect goeasy`: each conversation's history paged back by lasttimestamp to --since (30 a
call), filtered by senderId, rows of at most 20 timestamps; from the emulator over HTTP."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.collect.chains import CHAINS
from batchrecall.collect.history_run import HistoryRequest, collect_history
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, RowSink
from batchrecall.config import parse_config
from batchrecall.emulators.server import EmulatorSet
from batchrecall.intake.reader import read_job
from batchrecall.models import Item, Vendor
from batchrecall.results.manifest import manifest_path
from batchrecall.vendors.goeasy_history import history_path, read_history
from tests.collect_server import Gate, served


def rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def collect(tmp_path: Path, *args: str) -> tuple[int, Path]:
    out = tmp_path / "spam.jsonl"
    code = main(["collect", "goeasy", "--config", str(tmp_path / "c.toml"),
                 "--out", str(out), *args])  # fmt: skip
    return code, out


def test_history_request_and_answer_as_documented() -> None:
    # [DOC goeasy 2.x rest-api/history] GET /v2/im/history?appkey&groupId&limit&lasttimestamp
    path = history_path("BC-key", {"groupId": "g1"}, before_ms=1594958490235)
    split = urlsplit(path)
    assert split.path == "/v2/im/history"
    assert parse_qs(split.query) == {"appkey": ["BC-key"], "groupId": ["g1"], "limit": ["30"],
                                     "lasttimestamp": ["1594958490235"]}  # fmt: skip
    # The page's answer example, verbatim in shape.
    answer = {"code": 200, "content": [
        {"type": "text", "messageId": "8f0e27a0c7e111eab347b726da4416bd",
         "timestamp": 1594958217087, "senderId": "3bb179af", "payload": {"text": "Hello"}},
        {"type": "audio", "messageId": "312c8900", "timestamp": 1594958490234,
         "senderId": "fdee46b0", "payload": {"name": "a.m4a", "duration": 2.46}},
        {"type": "text", "timestamp": "bad"},
    ]}  # fmt: skip
    messages, entries = read_history(httpx.Response(200, content=orjson.dumps(answer)))
    assert entries == 3
    assert [(m.timestamp, m.sender) for m in messages] == [
        (1594958217087, "3bb179af"), (1594958490234, "fdee46b0")]  # fmt: skip


def seeded(now_ms: int) -> EmulatorSet:
    emulators = EmulatorSet()
    state = emulators.goeasy.state
    for n in range(70):  # spammer-7 every other message in the group, a minute apart
        state.add_message(now_ms - 60_000 * (n + 1), group_id="g1",
                          sender="spammer-7" if n % 2 == 0 else f"member-{n}")  # fmt: skip
    state.add_message(now_ms - 3 * 3600_000, group_id="g1", sender="spammer-7")  # outside
    state.add_message(now_ms - 5_000, user_a="spammer-7", user_b="alice")
    state.add_message(now_ms - 6_000, user_a="alice", user_b="spammer-7")  # alice's
    return emulators


def test_pages_back_to_since_and_keeps_the_senders_messages(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    emulators = seeded(now_ms)
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "2h",
                            "--conversation", "group:g1", "alice:spammer-7")  # fmt: skip
    assert code == 0
    found = rows(out)
    group = [r for r in found if r.get("groupId") == "g1"]
    stamps = [s for r in group for s in r["messages"]]
    assert sorted(stamps) == sorted(now_ms - 60_000 * (n + 1) for n in range(0, 70, 2))
    assert all(len(r["messages"]) <= 20 for r in group)
    assert all(r["sent_at"] == min(r["messages"]) for r in group)
    private = [r for r in found if "userAId" in r]
    assert [r["messages"] for r in private] == [[now_ms - 5_000]]
    assert all(isinstance(item, Item) for item in read_job(out))
    calls = [r for r in emulators.goeasy.log if r.path == "/v2/im/history"]
    assert all(int(r.query["limit"]) == 30 for r in calls)
    assert len([r for r in calls if r.query.get("groupId") == "g1"]) == 3  # 70 + 1, 30 a page
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert manifest["calls"] == {"history": len(calls), "retries": 0}


def test_recalled_messages_are_left_out(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    emulators = seeded(now_ms)
    emulators.goeasy.state.recall(("private", "alice", "spammer-7"), [now_ms - 5_000])
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "2h",
                            "--conversation", "alice:spammer-7")  # fmt: skip
    assert code == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [([], "GoEasy has no search by sender"),
     (["--conversation", "a:b:c"], "group:ID or USER_A:USER_B"),
     (["--conversation", "group:"], "group:ID or USER_A:USER_B")],
)  # fmt: skip
def test_bad_conversations_exit_2(tmp_path: Path, capsys: Any, args: list[str], words: str) -> None:
    (tmp_path / "c.toml").write_text("", encoding="utf-8")
    code, _ = collect(tmp_path, "--sender", "spammer-7", "--since", "2h", *args)
    assert code == 2
    assert words in capsys.readouterr().err


def test_csv_job_file_keeps_every_field(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    emulators = seeded(now_ms)
    out = tmp_path / "spam.csv"
    with served(emulators, tmp_path / "c.toml"):
        code = main(["collect", "goeasy", "--config", str(tmp_path / "c.toml"), "--out", str(out),
                     "--sender", "spammer-7", "--since", "2h",
                     "--conversation", "group:g1"])  # fmt: skip
    assert code == 0
    read = list(read_job(out))
    assert all(isinstance(item, Item) for item in read)
    assert len(read) == 35  # one item a timestamp


def test_conversations_are_read_side_by_side() -> None:
    # A conversation is a chain of pages; several read at once keep the lane's history rate
    # whatever one call's round trip.
    now_ms = int(time.time() * 1000)
    emulators = EmulatorSet()
    names = [f"group:g{n}" for n in range(CHAINS + 1)]
    for n in range(CHAINS + 1):
        emulators.goeasy.state.add_message(now_ms - 5_000, group_id=f"g{n}", sender="spammer-7")
    raw = tomllib.loads(emulators.config_toml("http://127.0.0.1"))
    config = parse_config(raw, environ={}, source="test")
    gate = Gate(httpx.ASGITransport(app=emulators.app), CHAINS)
    query = Query(vendor=Vendor.GOEASY, app="default", senders=("spammer-7",),
                  since_ms=now_ms - 3_600_000, until_ms=None, ref="t",
                  conversations=tuple(names))  # fmt: skip
    sink = RowSink(query, None, Collected())
    request = HistoryRequest(query=query, config=config, now_ms=now_ms, transport=gate)
    collected = collect_history(request, sink)
    assert collected.error == ""
    assert collected.found.items == len(names)
    assert [source["conversation"] for source in collected.sources] == names
