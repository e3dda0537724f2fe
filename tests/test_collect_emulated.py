"""`collect --emulate --seed JOB...`: the emulators in this process hold the job files' messages
(sent just now) and collect finds them as it would at the vendor: no config, no network."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.intake.reader import read_job
from batchrecall.models import Item
from batchrecall.results.manifest import manifest_path


def write_job(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def seed_job(tmp_path: Path) -> Path:
    rows: list[dict[str, Any]] = []
    for n in range(3):
        rows.append({"vendor": "yunxin", "op": "recall", "conversation_id": f"spammer-7|1|v{n}",
                     "message_server_id": str(900 + n)})  # fmt: skip
        rows.append({"vendor": "easemob", "op": "recall", "msg_id": str(1_500_000_000 + n),
                     "to": f"v{n}", "chat_type": "chat", "from": "spammer-7"})  # fmt: skip
    rows.append({"vendor": "yunxin", "op": "recall", "conversation_id": "alice|1|bob",
                 "message_server_id": "999"})  # fmt: skip
    rows.append({"vendor": "easemob", "op": "recall", "msg_id": "1600000000", "to": "bob",
                 "chat_type": "chat", "from": "alice"})  # fmt: skip
    now_ms = int(time.time() * 1000)  # GoEasy's history is read by its messages' timestamps
    rows.append({"vendor": "goeasy", "op": "recall", "userAId": "spammer-7", "userBId": "bob",
                 "messages": [now_ms - 2000, now_ms - 1000]})  # fmt: skip
    return write_job(tmp_path / "seed.jsonl", rows)


def collect(*args: str) -> int:
    return main(["collect", *args])


def test_yunxin_search_finds_the_seeded_senders_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed, out = seed_job(tmp_path), tmp_path / "spam.jsonl"
    code = collect("yunxin", "--sender", "spammer-7", "--since", "1h", "--emulate",
                   "--seed", str(seed), "--out", str(out))  # fmt: skip
    assert code == 0
    found = rows_of(out)
    assert sorted(r["message_server_id"] for r in found) == ["900", "901", "902"]
    assert all(isinstance(item, Item) for item in read_job(out))  # run takes it as it is
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert manifest["calls"]["history"] >= 1
    assert "hold 10 messages and conversations" in capsys.readouterr().err


def test_easemob_export_and_goeasy_history(tmp_path: Path) -> None:
    seed = seed_job(tmp_path)
    easemob, goeasy = tmp_path / "easemob.jsonl", tmp_path / "goeasy.jsonl"
    assert collect("easemob", "--sender", "spammer-7", "--since", "1h", "--emulate",
                   "--seed", str(seed), "--out", str(easemob)) == 0  # fmt: skip
    assert sorted(r["msg_id"] for r in rows_of(easemob)) == [
        str(1_500_000_000 + n) for n in range(3)
    ]
    goeasy_args = ["--conversation", "spammer-7:bob", "--emulate", "--seed", str(seed)]
    assert collect("goeasy", "--sender", "spammer-7", "--since", "1h", *goeasy_args,
                   "--out", str(goeasy)) == 0  # fmt: skip
    [row] = rows_of(goeasy)
    assert len(row["messages"]) == 2
    assert row["userAId"] == "spammer-7"


def test_collected_job_runs_against_the_emulators(tmp_path: Path) -> None:
    seed, out = seed_job(tmp_path), tmp_path / "spam.jsonl"
    assert collect("yunxin", "--sender", "spammer-7", "--since", "1h", "--emulate",
                   "--seed", str(seed), "--out", str(out)) == 0  # fmt: skip
    results = tmp_path / "spam.results.jsonl"
    assert main(["run", str(out), "--emulate", "--yes", "--no-progress",
                 "--out", str(results)]) == 0  # fmt: skip
    assert sorted(r["status"] for r in rows_of(results)) == ["ok", "ok", "ok"]


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--seed", "x.jsonl"], "--seed goes with --emulate"),
     (["--emulate", "--seed", "x.jsonl", "--export", "e.gz"], "give one of them"),
     (["--emulate", "--seed", "x.jsonl", "--config", "c.toml"], "needs no --config")],
)  # fmt: skip
def test_emulate_options_that_do_not_fit_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    assert collect("easemob", "--sender", "a", "--since", "1h", *args) == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("vendor", ["yunxin", "goeasy"])
def test_emulate_without_seed_finds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vendor: str
) -> None:
    """The emulators hold no messages then: nothing matched is exit 1, with what to give."""
    out = tmp_path / "found.jsonl"
    where = ["--conversation", "group:g1"] if vendor == "goeasy" else []
    code = collect(vendor, "--sender", "a", "--since", "1h", *where, "--emulate",
                   "--out", str(out))  # fmt: skip
    assert code == 1
    assert "--seed JOB" in capsys.readouterr().err
    assert not out.exists()
