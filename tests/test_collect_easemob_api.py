"""`collect easemob` over the export API: one call an hour of the window (the hour in the app's
export_utc_offset), the gzip file its answer names streamed and scanned; hours without a file
named, not fatal; from the emulator over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.emulators.server import EmulatorSet
from batchrecall.intake.reader import read_job
from batchrecall.models import Item
from batchrecall.results.manifest import manifest_path
from batchrecall.vendors.easemob_history import HourMissing, export_hours, read_export_answer
from tests.collect_server import served

HOUR_MS = 3_600_000


def rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def collect(tmp_path: Path, *args: str, offset: str | None = None) -> tuple[int, Path]:
    config = tmp_path / "c.toml"
    text = config.read_text(encoding="utf-8")
    extra = "history_rate = 100\n" + (f'export_utc_offset = "{offset}"\n' if offset else "")
    config.write_text(text.replace("[easemob.default]\n", "[easemob.default]\n" + extra))
    out = tmp_path / "spam.jsonl"
    code = main(["collect", "easemob", "--config", str(config), "--out", str(out), *args])
    return code, out


def test_hours_are_the_apps_zone() -> None:
    # 2025-12-03T09:40Z to 11:10Z: Beijing 17:40 to 19:10, three hours of files
    since, until = 1_764_754_800_000, 1_764_754_800_000 + 90 * 60_000
    beijing = timezone(timedelta(hours=8))
    assert export_hours(since, until, beijing) == ["2025120317", "2025120318", "2025120319"]
    assert export_hours(since, until, UTC) == ["2025120309", "2025120310", "2025120311"]


def test_answers_as_documented() -> None:
    # [DOC message_historical.md] the 200 answer and the two "no file" refusals
    ok = {"action": "get", "application": "8be024f0", "uri": "https://x/chatmessages/2018112717",
          "data": [{"url": "https://oss.example/h.gz?Expires=1543316122&Signature=S"}],
          "timestamp": 1543314322601, "duration": 0, "organization": "o",
          "applicationName": "testapp"}  # fmt: skip
    answer = read_export_answer(httpx.Response(200, content=orjson.dumps(ok)), generation=1, now=0)
    assert answer == "https://oss.example/h.gz?Expires=1543316122&Signature=S"
    unstored = {
        "error": "illegal_argument",
        "error_description": "illegal arguments: appkey: "
        "o#a, time: 2018112717, maybe chat message history is expired or unstored",
    }
    missing = read_export_answer(
        httpx.Response(400, content=orjson.dumps(unstored)), generation=1, now=0
    )
    assert isinstance(missing, HourMissing)
    nothing = {
        "error": "storage_object_not_found",
        "error_description": "Failed to find chat message history download url",
    }
    assert isinstance(
        read_export_answer(httpx.Response(404, content=orjson.dumps(nothing)), generation=1,
                           now=0), HourMissing)  # fmt: skip


def seeded(now_s: float) -> EmulatorSet:
    emulators = EmulatorSet()
    state = emulators.easemob.state
    for n in range(40):  # spammer-7 every fourth message over the last ~2 hours
        sender = "spammer-7" if n % 4 == 0 else f"user-{n}"
        state.add_message(str(1_400_000_000_000_000_000 + n), sender=sender, to=f"victim-{n % 3}",
                          chat_type="chat", sent_at=now_s - 60 - n * 180)  # fmt: skip
    state.add_message(
        "1500000000000000000",
        sender="spammer-7",
        to="victim-0",
        chat_type="chat",
        sent_at=now_s - 5 * 3600,
    )  # outside 3h
    return emulators


def test_reads_every_hour_and_finds_the_senders_messages(tmp_path: Path) -> None:
    now = time.time()
    emulators = seeded(now)
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "3h")
    assert code == 0
    ids = sorted(r["msg_id"] for r in rows(out))
    assert ids == sorted(str(1_400_000_000_000_000_000 + n) for n in range(0, 40, 4))
    assert all(isinstance(item, Item) for item in read_job(out))
    calls = [r for r in emulators.easemob.log if "/chatmessages/" in r.path]
    assert len(calls) in (3, 4)  # the hours [now-3h, now) touch
    downloads = [r for r in emulators.easemob.log if "/_export/" in r.path]
    assert all("authorization" not in {k.lower() for k in r.query} for r in downloads)
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert [s["hour"] for s in manifest["sources"]] == [c.path.rsplit("/", 1)[1] for c in calls]


def test_a_recall_does_not_change_the_export(tmp_path: Path) -> None:
    now = time.time()
    emulators = seeded(now)
    emulators.easemob.state.recall(str(1_400_000_000_000_000_000), to="victim-0",
                                   chat_type="chat", force=True)  # fmt: skip
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "3h")
    assert code == 0
    assert str(1_400_000_000_000_000_000) in {r["msg_id"] for r in rows(out)}


def test_hours_not_ready_are_named_not_fatal(tmp_path: Path, capsys: Any) -> None:
    now = time.time()
    emulators = seeded(now)
    emulators.easemob.state.export.delay_s = 24 * 3600  # nothing generated yet
    emulators.easemob.state.add_message("1600000000000000000", sender="spammer-7", to="v",
                                        chat_type="chat", sent_at=now - 30 * 3600)  # fmt: skip
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "31h",
                            "--until", "28h")  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert [r["msg_id"] for r in rows(out)] == ["1600000000000000000"]
    manifest = orjson.loads(manifest_path(out).read_bytes())
    # Hours of the window without a message have no file (404): named, not fatal.
    assert manifest["missing"]
    assert all("HTTP 404 storage_object_not_found" in m for m in manifest["missing"])
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "3h")
    printed = capsys.readouterr().out
    assert code == 1
    assert "no export file" in printed
    assert "expired or unstored" in printed


def test_the_offset_names_other_hours(tmp_path: Path) -> None:
    now = time.time()
    emulators = seeded(now)
    with served(emulators, tmp_path / "c.toml"):
        code, _ = collect(tmp_path, "--sender", "spammer-7", "--since", "3h", offset="Z")
    # The emulator's cluster is on Beijing time: read as UTC hours, the files are other hours'.
    calls = [r.path.rsplit("/", 1)[1] for r in emulators.easemob.log if "/chatmessages/" in r.path]
    utc_hour = time.strftime("%Y%m%d%H", time.gmtime(now))
    assert calls[-1] == utc_hour
    assert code in (0, 1)


@pytest.mark.parametrize("offset", ["+8", "08:00", "+25:00"])
def test_bad_offset_is_a_config_error(tmp_path: Path, capsys: Any, offset: str) -> None:
    emulators = seeded(time.time())
    with served(emulators, tmp_path / "c.toml"):
        code, _ = collect(tmp_path, "--sender", "spammer-7", "--since", "3h", offset=offset)
    assert code == 2
    assert "export_utc_offset" in capsys.readouterr().err
