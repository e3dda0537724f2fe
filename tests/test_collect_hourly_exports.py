"""`collect tencent` (no --conversation) and `collect rongcloud`: the vendors' hourly exports
(Tencent `v4/open_msg_svc/get_history`, RongCloud `/message/history.json`), read hour by hour in
Beijing time, each file streamed and scanned; and `--export` of files already downloaded."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.emulators.server import EmulatorSet
from batchrecall.errors import ErrorCode, LaneFatalError
from batchrecall.intake.reader import read_job
from batchrecall.models import Item
from batchrecall.results.manifest import manifest_path
from batchrecall.vendors.easemob_history import HourMissing
from batchrecall.vendors.rongcloud_history import history_form, read_history_answer
from batchrecall.vendors.tencent_export_history import history_body, read_history
from tests.collect_server import served

BEIJING = timezone(timedelta(hours=8))


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_lines(path: Path, records: list[Any], *, gz: bool = True) -> Path:
    text = b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def beijing_hour(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(BEIJING).strftime("%Y%m%d%H")


# The answer examples of the documents.


def test_tencent_get_history_request_and_answer_as_documented() -> None:
    # tencentcloud.com/zh/document/product/1047/34885: the request and answer examples [DOC].
    assert history_body("C2C", "2015120121") == {"ChatType": "C2C", "MsgTime": "2015120121"}
    answer = {
        "File": [
            {
                "URL": "https://download.tim.qq.com/msg_history/2/9b8f8f063b73f61698ce11e58207e89ade40.gz",
                "ExpireTime": "2015-12-02 16:45:23",
                "FileSize": 65207,
                "FileMD5": "cceece008bb7f469a47cf8c4b7acb84e",
                "GzipSize": 1815,
                "GzipMD5": "c3a0269dde393fd7a8bb18bfdeaeee2e",
            }
        ],
        "ActionStatus": "OK",
        "ErrorInfo": "",
        "ErrorCode": 0,
    }
    assert read_history(answer) == [answer["File"][0]["URL"]]  # type: ignore[index]
    assert isinstance(read_history({"ActionStatus": "OK", "ErrorCode": 0, "File": []}), HourMissing)


def test_rongcloud_history_request_and_answer_as_documented() -> None:
    # research/history-apis.md §6 (RC-PY docstring): the answer example.
    assert history_form("2014010101") == b"date=2014010101"
    example = {"code": 200, "url": "http://aa.com/1/c6720eea-7b42.gz", "date": "2014010101"}
    assert read_history_answer(httpx.Response(200, json=example), now=0) == [example["url"]]
    empty = read_history_answer(
        httpx.Response(200, json={"code": 200, "url": "", "date": "2014010101"}), now=0
    )
    assert isinstance(empty, HourMissing)
    with pytest.raises(LaneFatalError) as refused:
        read_history_answer(
            httpx.Response(430, json={"code": 1009, "errorMessage": "服务未开通"}), now=0
        )
    assert refused.value.code is ErrorCode.SERVICE_DISABLED


# End to end against the emulators, in this process.


def seed_job(tmp_path: Path, now_ms: int) -> Path:
    rows = [
        {"vendor": "tencent", "op": "recall", "From_Account": "spammer-7", "To_Account": "bob",
         "MsgKey": "1_2_3"},
        {"vendor": "tencent", "op": "recall", "From_Account": "spammer-7", "To_Account": "carol",
         "MsgKey": "4_5_6"},
        {"vendor": "tencent", "op": "recall", "From_Account": "alice", "To_Account": "bob",
         "MsgKey": "7_8_9"},
        {"vendor": "rongcloud", "op": "recall", "fromUserId": "spammer-7", "conversationType": 1,
         "targetId": "bob", "messageUID": "UID-1", "sentTime": now_ms - 5000},
        {"vendor": "rongcloud", "op": "recall", "fromUserId": "spammer-7", "conversationType": 3,
         "targetId": "g1", "messageUID": "UID-2", "sentTime": now_ms - 4123},
        {"vendor": "rongcloud", "op": "recall", "fromUserId": "alice", "conversationType": 1,
         "targetId": "bob", "messageUID": "UID-3", "sentTime": now_ms - 3000},
    ]  # fmt: skip
    path = tmp_path / "seed.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_tencent_export_in_process_finds_the_senders_messages(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    seed, out = seed_job(tmp_path, now_ms), tmp_path / "t.jsonl"
    code = main(["collect", "tencent", "--sender", "spammer-7", "--since", "30m", "--emulate",
                 "--seed", str(seed), "--out", str(out)])  # fmt: skip
    assert code == 0
    found = rows_of(out)
    assert sorted(r["MsgKey"] for r in found) == ["1_2_3", "4_5_6"]
    assert {(r["From_Account"], r["To_Account"]) for r in found} == {
        ("spammer-7", "bob"),
        ("spammer-7", "carol"),
    }
    assert all(isinstance(i, Item) for i in read_job(out))
    manifest = orjson.loads(manifest_path(out).read_bytes())
    # Each Beijing hour the window touches, for one-to-one and group messages.
    hours = {beijing_hour(now_ms - 30 * 60_000), beijing_hour(now_ms)}
    asked = {s["hour"] for s in manifest["sources"]}
    assert asked == {f"{h} {kind}" for h in hours for kind in ("C2C", "Group")}
    assert manifest["calls"]["downloads"] == 1  # the group hours hold no message: no file
    assert manifest["calls"]["history"] == 2 * len(hours)


def test_rongcloud_export_in_process_finds_the_senders_messages(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    seed, out = seed_job(tmp_path, now_ms), tmp_path / "r.jsonl"
    code = main(["collect", "rongcloud", "--sender", "spammer-7", "--since", "30m", "--emulate",
                 "--seed", str(seed), "--out", str(out)])  # fmt: skip
    assert code == 0
    found = sorted(rows_of(out), key=lambda r: r["messageUID"])
    assert [
        (r["messageUID"], r["conversationType"], r["targetId"], r["sentTime"]) for r in found
    ] == [
        ("UID-1", 1, "bob", now_ms - 5000),
        ("UID-2", 3, "g1", now_ms - 4123),  # the log's time to the ms
    ]
    assert all(r["fromUserId"] == "spammer-7" for r in found)
    assert all(isinstance(i, Item) for i in read_job(out))


def test_an_hour_not_available_is_named_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now_ms = int(time.time() * 1000)
    seed = seed_job(tmp_path, now_ms)
    until = datetime.fromtimestamp(now_ms / 1000 + 2 * 3600, UTC).isoformat()
    later = beijing_hour(now_ms + 2 * 3600_000 - 1)
    for vendor, name in (("tencent", f"{later} C2C"), ("rongcloud", later)):
        out = tmp_path / f"{vendor}.jsonl"
        code = main(["collect", vendor, "--sender", "spammer-7", "--since", "30m", "--until",
                     until, "--emulate", "--seed", str(seed), "--out", str(out)])  # fmt: skip
        assert code == 0, vendor
        assert len(rows_of(out)) == 2
        manifest = orjson.loads(manifest_path(out).read_bytes())
        assert any(m.startswith(f"{name} (+08:00)") for m in manifest["missing"]), vendor
        assert {"hour": name, "missing": manifest["sources"][-1]["missing"]} in manifest["sources"]
        assert f"no export file: {name} (+08:00)" in capsys.readouterr().out


# Over HTTP, as the operator runs it.


def test_over_http_both_exports_and_rongclouds_disabled_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now_s = time.time()
    emulators = EmulatorSet()
    tencent, rongcloud = emulators.tencent.state, emulators.rongcloud.state
    tencent.add_c2c_message("k_1", sender="spammer-7", receiver="bob", sent_at=now_s - 60)
    tencent.add_group_message("@TGS#g1", 7, sender="spammer-7", sent_at=now_s - 50)
    tencent.add_group_message("@TGS#g1", 8, sender="bob", sent_at=now_s - 40)
    rongcloud.add_message("UID-9", sender="spammer-7", conversation_type=1, target_id="bob",
                          sent_ms=int(now_s * 1000) - 30_000)  # fmt: skip
    # A 5xx of each hour request and of a download is asked again, through the lane's retries.
    emulators.tencent.faults.push("code_500", only_path_contains="get_history")
    emulators.tencent.faults.push("http_502", only_path_contains="/_export/")
    emulators.rongcloud.faults.push("http_502", only_path_contains="history.json")
    config = tmp_path / "c.toml"
    with served(emulators, config):
        out_t, out_r = tmp_path / "t.jsonl", tmp_path / "r.jsonl"
        assert main(["collect", "tencent", "--sender", "spammer-7", "--since", "10m",
                     "--config", str(config), "--out", str(out_t)]) == 0  # fmt: skip
        assert main(["collect", "rongcloud", "--sender", "spammer-7", "--since", "10m",
                     "--config", str(config), "--out", str(out_r)]) == 0  # fmt: skip
        # The collected job runs as it is: the message is recalled.
        assert main(["run", str(out_r), "--config", str(config), "--yes", "--no-progress"]) == 0
        assert rongcloud.is_recalled("UID-9")
        emulators.rongcloud.export.enabled = False
        out_x = tmp_path / "x.jsonl"
        code = main(["collect", "rongcloud", "--sender", "spammer-7", "--since", "10m",
                     "--config", str(config), "--out", str(out_x)])  # fmt: skip
    found = rows_of(out_t)
    assert [r.get("MsgKey") for r in found if "MsgKey" in r] == ["k_1"]
    assert [(r["GroupId"], r["MsgSeq"]) for r in found if "GroupId" in r] == [("@TGS#g1", 7)]
    [row] = rows_of(out_r)
    assert row["messageUID"] == "UID-9"
    assert code == 2
    assert "not enabled" in capsys.readouterr().err
    assert not out_x.exists()
    paths = [r.path for r in emulators.tencent.log]
    assert paths.count("/v4/open_msg_svc/get_history") >= 2
    assert any(p.startswith("/_export/") for p in paths)
    calls_t = orjson.loads(manifest_path(out_t).read_bytes())["calls"]
    calls_r = orjson.loads(manifest_path(out_r).read_bytes())["calls"]
    assert calls_t["retries"] == 1  # the hour request's 91000
    assert calls_r["retries"] == 1
    assert calls_t["downloads"] == 2 + 1  # one file each kind, one sent again


# Files already downloaded.


def tencent_records() -> list[Any]:
    return [
        {"From_Account": "spammer-7", "To_Account": "bob", "MsgTimestamp": 1796300000,
         "MsgKey": "a_1", "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "buy"}}]},
        {"From_Account": "bob", "To_Account": "spammer-7", "MsgTimestamp": 1796300001,
         "MsgKey": "b_1"},
        {"GroupId": "@TGS#g", "From_Account": "spammer-7", "MsgTimestamp": 1796300002,
         "MsgSeq": 12},
        {"From_Account": "spammer-7", "To_Account": "bob", "MsgTimestamp": 1796300003},
        # The sender's id written with an escape (`\u002d` is `-`).
        b'{"From_Account":"spammer\\u002d7","To_Account":"carol","MsgTimestamp":1796300004,'
        b'"MsgKey":"c_1"}',
        {"From_Account": "spammer-7", "To_Account": "bob", "MsgTimestamp": 1796300000,
         "MsgKey": "a_1"},  # recorded twice
    ]  # fmt: skip


def test_tencent_export_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = write_lines(tmp_path / "2026120310.gz", tencent_records())
    out = tmp_path / "t.jsonl"
    code = main(["collect", "tencent", "--export", str(export), "--sender", "spammer-7",
                 "--since", "2026-12-01T00:00Z", "--out", str(out)])  # fmt: skip
    assert code == 0
    found = rows_of(out)
    assert [r.get("MsgKey") or r.get("MsgSeq") for r in found] == ["a_1", 12, "c_1"]
    assert found[0]["sent_at"] == 1796300000_000
    assert found[1]["GroupId"] == "@TGS#g"
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert manifest["scan"]["malformed"] == 1
    assert "without To_Account and MsgKey" in manifest["scan"]["malformed_first"][0]
    assert manifest["found"]["duplicates"] == 1
    assert "1 recorded twice" in capsys.readouterr().out
    contains = tmp_path / "buy.jsonl"
    assert main(["collect", "tencent", "--export", str(export), "--sender", "spammer-7",
                 "--since", "2026-12-01T00:00Z", "--contains", "buy",
                 "--out", str(contains)]) == 0  # fmt: skip
    assert [r["MsgKey"] for r in rows_of(contains)] == ["a_1"]


def test_rongcloud_export_files(tmp_path: Path) -> None:
    records = [
        {"fromUserId": "spammer-7", "targetId": "bob", "conversationType": 1, "msgUID": "U1",
         "dateTime": 1796300000123},
        {"fromUserId": "spammer-7", "targetId": "g1", "conversationType": "3", "msgUID": "U2",
         "dateTime": "2026-12-03 18:00:00.456", "busChannel": "ch"},
        {"fromUserId": "spammer-7", "targetId": "g1", "conversationType": 3, "msgUID": "U3",
         "dateTime": "2026-12-03 18:00:01"},  # no ms: would not name the message
        {"fromUserId": "spammer-7", "targetId": "bob", "conversationType": 1,
         "dateTime": 1796300000999},  # no msgUID
        {"fromUserId": "alice", "targetId": "bob", "conversationType": 1, "msgUID": "U4",
         "dateTime": 1796300000124},
    ]  # fmt: skip
    export = write_lines(tmp_path / "log.txt", records, gz=False)
    out = tmp_path / "r.csv"
    code = main(["collect", "rongcloud", "--export", str(export), "--sender", "spammer-7",
                 "--since", "2026-12-01T00:00Z", "--out", str(out)])  # fmt: skip
    assert code == 0
    items = [i for i in read_job(out) if isinstance(i, Item)]
    assert [(i.params["messageUID"], i.params["sentTime"]) for i in items] == [
        ("U1", 1796300000123),
        ("U2", round(datetime(2026, 12, 3, 10, 0, 0, 456000, tzinfo=UTC).timestamp() * 1000)),
    ]
    assert items[1].params["busChannel"] == "ch"
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert manifest["scan"]["malformed"] == 2
    named = " ".join(manifest["scan"]["malformed_first"])
    assert "dateTime is not a time in ms" in named
    assert "no msgUID" in named


def test_a_cut_gzip_is_an_error_naming_the_file_keeping_what_came_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    many = [
        {"From_Account": "spammer-7", "To_Account": "bob", "MsgTimestamp": 1796300000 + n,
         "MsgKey": f"k_{n}", "MsgBody": [{"MsgType": "TIMTextElem",
                                           "MsgContent": {"Text": f"{n:x}" * 50}}]}
        for n in range(20_000)
    ]  # fmt: skip
    whole = write_lines(tmp_path / "whole.gz", many).read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "t.jsonl"
    code = main(["collect", "tencent", "--export", str(cut), "--sender", "spammer-7",
                 "--since", "2026-12-01T00:00Z", "--out", str(out)])  # fmt: skip
    assert code == 2
    assert f"export {cut}: the gzip file is cut short" in capsys.readouterr().err
    kept = rows_of(out)
    assert 0 < len(kept) < len(many)
    assert [r["MsgKey"] for r in kept] == [f"k_{n}" for n in range(len(kept))]


def test_options_that_do_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = write_lines(tmp_path / "e.gz", tencent_records())
    base = ["--sender", "s", "--since", "1h", "--out", str(tmp_path / "o.jsonl")]
    assert main(["collect", "goeasy", "--export", str(export), *base]) == 2
    assert "Easemob, Tencent and RongCloud" in capsys.readouterr().err
    assert main(["collect", "rongcloud", "--contains", "x", "--emulate", *base]) == 2
    assert "--contains is not supported for RongCloud" in capsys.readouterr().err
    assert main(["collect", "rongcloud", "--idle-before", "3d", "--account", "a",
                 "--emulate"]) == 2  # fmt: skip
    assert "not supported for RongCloud" in capsys.readouterr().err
