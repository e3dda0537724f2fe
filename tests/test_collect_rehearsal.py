"""collect -> plan -> run -> report over HTTP against `batchrecall emulate --seed JOB`, one
vendor at a time: the seeded messages of several senders and times are found for exactly the
sender asked, inside the window (none outside, none twice), and the job runs to ok."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.results.store import read_rows
from tests.test_over_http import Emulate, emulate_factory

servers = emulate_factory

pytestmark = pytest.mark.slow


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _rehearse(tmp_path: Path, server: Emulate, vendor: str, *args: str) -> list[dict[str, Any]]:
    job = tmp_path / "collected.jsonl"
    config = str(server.config)
    assert main(["collect", vendor, "--config", config, "--out", str(job), *args]) == 0
    assert main(["validate", str(job)]) == 0
    assert main(["plan", str(job), "--config", config]) == 0
    results = tmp_path / "results.jsonl"
    code = main(["run", str(job), "--config", config, "--out", str(results), "--yes",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    rows, _ = read_rows(results)
    assert rows
    assert {row["status"] for row in rows} == {"ok"}
    assert main(["report", str(results)]) == 0
    return [orjson.loads(line) for line in job.read_bytes().splitlines()]


def test_easemob(tmp_path: Path, servers: Any) -> None:
    seed = _write(tmp_path / "seed.jsonl", [
        {"vendor": "easemob", "op": "recall", "msg_id": str(1000 + n), "to": f"victim-{n}",
         "chat_type": "chat", "from": "spammer-7" if n % 2 == 0 else f"user-{n}"}
        for n in range(8)
    ])  # fmt: skip
    scenario = _write(tmp_path / "scenario.json", [])
    scenario.write_bytes(orjson.dumps([{"vendor": "easemob", "target": "1006", "age_s": 3 * 3600}]))
    server = servers("--seed", str(seed), "--scenario", str(scenario))
    found = _rehearse(tmp_path, server, "easemob", "--sender", "spammer-7", "--since", "1h")
    assert sorted(r["msg_id"] for r in found) == ["1000", "1002", "1004"]  # 1006: 3 hours ago


def test_yunxin(tmp_path: Path, servers: Any) -> None:
    seed = _write(tmp_path / "seed.jsonl", [
        {"vendor": "yunxin", "op": "recall", "conversation_id": "spammer-7|1|alice",
         "message_server_id": "11"},
        {"vendor": "yunxin", "op": "recall", "conversation_id": "spammer-7|2|team-1",
         "message_server_id": "12"},
        {"vendor": "yunxin", "op": "recall", "conversation_id": "spammer-7|1|bob",
         "message_server_id": "13"},
        {"vendor": "yunxin", "op": "recall", "conversation_id": "alice|1|spammer-7",
         "message_server_id": "14"},
        {"vendor": "yunxin", "op": "recall", "conversation_id": "bob|2|team-1",
         "message_server_id": "15"},
    ])  # fmt: skip
    scenario = tmp_path / "scenario.json"
    scenario.write_bytes(orjson.dumps([{"vendor": "yunxin", "target": "13", "age_s": 7200}]))
    server = servers("--seed", str(seed), "--scenario", str(scenario))
    found = _rehearse(tmp_path, server, "yunxin", "--sender", "spammer-7", "--since", "1h")
    assert sorted(r["message_server_id"] for r in found) == ["11", "12"]
    assert (
        next(r for r in found if r["message_server_id"] == "12")["check_team_member_valid"] is False
    )


def test_goeasy(tmp_path: Path, servers: Any) -> None:
    now_ms = int(time.time() * 1000)
    stamps = [now_ms - 60_000 * (n + 1) for n in range(6)]
    old = now_ms - 3 * 3600_000
    seed = _write(tmp_path / "seed.jsonl", [
        {"vendor": "goeasy", "op": "recall", "groupId": "g1", "messages": [*stamps[:3], old],
         "recaller": {"id": "spammer-7"}},
        {"vendor": "goeasy", "op": "recall", "groupId": "g1", "messages": stamps[3:],
         "recaller": {"id": "user-1"}},
    ])  # fmt: skip
    server = servers("--seed", str(seed))
    found = _rehearse(tmp_path, server, "goeasy", "--sender", "spammer-7", "--since", "1h",
                      "--conversation", "group:g1")  # fmt: skip
    assert [sorted(r["messages"]) for r in found] == [sorted(stamps[:3])]


def test_tencent(tmp_path: Path, servers: Any) -> None:
    seed = _write(tmp_path / "seed.jsonl", [
        {"vendor": "tencent", "op": "recall", "From_Account": sender, "To_Account": to,
         "MsgKey": key}
        for sender, to, key in (("spammer-7", "bob", "1_2_3"), ("spammer-7", "carol", "4_5_6"),
                                ("alice", "bob", "7_8_9"), ("spammer-7", "dave", "9_9_9"))
    ])  # fmt: skip
    scenario = tmp_path / "scenario.json"
    scenario.write_bytes(
        orjson.dumps([{"vendor": "tencent", "target": "9_9_9", "age_s": 3 * 3600}])
    )
    server = servers("--seed", str(seed), "--scenario", str(scenario))
    found = _rehearse(tmp_path, server, "tencent", "--sender", "spammer-7", "--since", "1h")
    assert sorted(r["MsgKey"] for r in found) == ["1_2_3", "4_5_6"]  # 9_9_9: 3 hours ago


def test_rongcloud(tmp_path: Path, servers: Any) -> None:
    now_ms = int(time.time() * 1000)
    seed = _write(tmp_path / "seed.jsonl", [
        {"vendor": "rongcloud", "op": "recall", "fromUserId": sender, "conversationType": kind,
         "targetId": target, "messageUID": uid, "sentTime": now_ms - 5000}
        for sender, kind, target, uid in (("spammer-7", 1, "bob", "UID-1"),
                                          ("spammer-7", 3, "g1", "UID-2"),
                                          ("alice", 1, "bob", "UID-3"),
                                          ("spammer-7", 1, "carol", "UID-4"))
    ])  # fmt: skip
    scenario = tmp_path / "scenario.json"
    scenario.write_bytes(
        orjson.dumps([{"vendor": "rongcloud", "target": "UID-4", "age_s": 3 * 3600}])
    )
    server = servers("--seed", str(seed), "--scenario", str(scenario))
    found = _rehearse(tmp_path, server, "rongcloud", "--sender", "spammer-7", "--since", "1h")
    assert sorted(r["messageUID"] for r in found) == ["UID-1", "UID-2"]  # UID-4: 3 hours ago
