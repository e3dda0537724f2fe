"""`collect tencent`: a one-to-one conversation's roaming messages (admin_getroammsg, paged back
by LastMsgTime/LastMsgKey past the 13 KB answer) and a group's (group_msg_get_simple, 20 a call,
paged back by seq), filtered by sender and time; from the emulator over HTTP."""

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
from batchrecall.vendors.tencent_history import (
    contacts_body,
    group_body,
    read_contacts,
    read_group,
    read_roam,
    roam_body,
)
from tests.collect_server import served


def rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def collect(tmp_path: Path, *args: str) -> tuple[int, Path]:
    out = tmp_path / "spam.jsonl"
    code = main(["collect", "tencent", "--config", str(tmp_path / "c.toml"),
                 "--out", str(out), *args])  # fmt: skip
    return code, out


def test_history_requests_and_answers_as_documented() -> None:
    # research/history-apis.md §5: the key parameters, times in Unix seconds.
    assert roam_body("op", "peer", min_s=1, max_s=2, last_key="k") == {
        "Operator_Account": "op", "Peer_Account": "peer", "MaxCnt": 100, "MinTime": 1,
        "MaxTime": 2, "LastMsgKey": "k"}  # fmt: skip
    assert group_body("@TGS#15ERQPAER", below_seq=7803321) == {
        "GroupId": "@TGS#15ERQPAER", "ReqMsgSeq": 7803321, "ReqMsgNumber": 20}  # fmt: skip
    roam = read_roam({"ActionStatus": "OK", "ErrorCode": 0, "Complete": 0, "LastMsgTime": 9,
                      "LastMsgKey": "k2", "MsgList": [
        {"From_Account": "a", "To_Account": "b", "MsgTimeStamp": 10, "MsgKey": "k1",
         "MsgFlagBits": 0},
        {"From_Account": "a", "To_Account": "b", "MsgTimeStamp": 9, "MsgKey": "k2",
         "MsgFlagBits": 8},
        {"From_Account": "a"}]})  # fmt: skip
    assert (roam.entries, roam.more, roam.next_key, roam.next_time) == (3, True, "k2", 9)
    assert [(m.msg_key, m.sent_ms, m.gone) for m in roam.messages] == [
        ("k1", 10_000, False), ("k2", 9_000, True)]  # fmt: skip
    group = read_group({"IsFinished": 1, "RspMsgList": [
        {"From_Account": "a", "MsgSeq": 5, "MsgTimeStamp": 10, "IsPlaceMsg": 0},
        {"From_Account": "a", "MsgSeq": 4, "MsgTimeStamp": 9, "IsPlaceMsg": 2}]})  # fmt: skip
    assert not group.more
    assert [(m.seq, m.gone) for m in group.messages] == [(5, False), (4, True)]


def seeded(now_s: float) -> EmulatorSet:
    emulators = EmulatorSet()
    state = emulators.tencent.state
    # 150 one-to-one messages a minute apart, every other one spammer-7's: more than one 13 KB
    # answer holds.
    for n in range(150):
        sender, receiver = ("spammer-7", "alice") if n % 2 == 0 else ("alice", "spammer-7")
        state.add_c2c_message(f"{n}_1_{n}", sender=sender, receiver=receiver,
                              sent_at=now_s - 60 * (n + 1))  # fmt: skip
    state.add_c2c_message("old_1_1", sender="spammer-7", receiver="alice",
                          sent_at=now_s - 5 * 3600)  # fmt: skip
    # A group of 45 messages, a third spammer-7's; one of them already recalled.
    for seq in range(1, 46):
        sender = "spammer-7" if seq % 3 == 0 else f"member-{seq}"
        state.add_group_message("@TGS#g1", seq, sender=sender, sent_at=now_s - 60 * (46 - seq))
    state.recall_group("@TGS#g1", [45])
    return emulators


@pytest.mark.slow
def test_pages_back_to_since_and_keeps_the_senders_messages(tmp_path: Path) -> None:
    now_s = time.time()
    emulators = seeded(now_s)
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "4h",
                            "--conversation", "user:alice", "group:@TGS#g1")  # fmt: skip
    assert code == 0
    found = rows(out)
    c2c = [r for r in found if "MsgKey" in r]
    assert sorted(r["MsgKey"] for r in c2c) == sorted(f"{n}_1_{n}" for n in range(0, 150, 2))
    assert {(r["From_Account"], r["To_Account"]) for r in c2c} == {("spammer-7", "alice")}
    group = [r for r in found if "GroupId" in r]
    seqs = [s for r in group for s in r["MsgSeq"]]
    assert sorted(seqs) == [s for s in range(3, 45, 3)]  # 45 was recalled already
    assert all(len(r["MsgSeq"]) <= 10 for r in group)
    paths = [r.path for r in emulators.tencent.log]
    assert paths.count("/v4/openim/admin_getroammsg") >= 2, "more than one 13 KB answer"
    assert paths.count("/v4/group_open_http_svc/group_msg_get_simple") == 3  # 20 a call
    # The job file is one `run` takes as it is.
    items = [i for i in read_job(out) if isinstance(i, Item)]
    assert len(items) == len(c2c) + len(seqs)


@pytest.mark.slow
def test_collected_rows_recall_the_messages(tmp_path: Path) -> None:
    now_s = time.time()
    emulators = seeded(now_s)
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "1h",
                            "--conversation", "group:@TGS#g1")  # fmt: skip
        assert code == 0
        assert main(["run", str(out), "--config", str(tmp_path / "c.toml"), "--yes",
                     "--no-progress"]) == 0  # fmt: skip
    assert all(emulators.tencent.state.is_seq_recalled("@TGS#g1", s) for s in range(3, 45, 3))
    assert not emulators.tencent.state.is_seq_recalled("@TGS#g1", 1)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--sender", "s", "--since", "1h", "--chat-type", "chat"], "--chat-type is Easemob"),
        (["--sender", "s", "--since", "1h", "--conversation", "alice"], "user:PEER"),
        (
            [
                "--sender",
                "s",
                "--since",
                "1h",
                "--conversation",
                "user:a",
                "--op",
                "delete_message",
            ],
            "--op recall",
        ),
        (
            ["--idle-before", "3d", "--account", "a", "--conversation", "user:b"],
            "--idle-before does not take --conversation",
        ),
    ],
)
def test_options_that_do_not_fit_are_usage_errors(
    tmp_path: Path, args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "c.toml").write_text(
        '[tencent.default]\nbase_url = "http://127.0.0.1:9"\nsdkappid = 1\n'
        'identifier = "admin"\nsecret_key = "k"\n'
    )
    code, out = collect(tmp_path, *args)
    assert code == 2
    assert words in capsys.readouterr().err
    assert not out.exists()


def test_conversation_list_request_and_answer_as_documented() -> None:
    # tencentcloud.com/zh/document/product/1047/43087: the request and answer examples [DOC].
    assert contacts_body("id1") == {
        "From_Account": "id1", "TimeStamp": 0, "StartIndex": 0, "TopTimeStamp": 0,
        "TopStartIndex": 0, "AssistFlags": 7}  # fmt: skip
    answer = {"SessionItem": [{"Type": 1, "To_Account": "id2", "MsgTime": 1630997627, "TopFlag": 1},
        {"Type": 2, "GroupId": "id3", "MsgTime": 1630997628, "TopFlag": 1},
        {"Type": 1, "To_Account": "id4", "MsgTime": 1630997630, "TopFlag": 0},
        {"Type": 2, "GroupId": "id5", "MsgTime": 1630997650, "TopFlag": 0}],
        "CompleteFlag": 1, "TimeStamp": 1631012800, "StartIndex": 0, "TopTimeStamp": 1631012800,
        "TopStartIndex": 0, "ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "",
        "ErrorDisplay": ""}  # fmt: skip
    page = read_contacts(answer)
    assert page.complete
    assert [(c.kind, c.other, c.last_ms) for c in page.conversations] == [
        (1, "id2", 1630997627000), (2, "id3", 1630997628000), (1, "id4", 1630997630000),
        (2, "id5", 1630997650000)]  # fmt: skip


@pytest.mark.slow
def test_retention_lists_the_conversations_idle_before_the_time(tmp_path: Path) -> None:
    now_s = time.time()
    emulators = EmulatorSet()
    state = emulators.tencent.state
    for n in range(150):  # more than a page
        state.add_conversation("alice", 1, f"peer-{n}", last_at=now_s - 86400 * (n % 6) - 3600)
    state.add_conversation("alice", 2, "@TGS#old", last_at=now_s - 10 * 86400)
    state.add_conversation("alice", 2, "@TGS#new", last_at=now_s - 3600)
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--idle-before", "3d", "--account", "alice", "nobody")
    assert code == 2  # "nobody" was never imported: named, rows found before it kept
    found = rows(out)
    peers = sorted(r["To_Account"] for r in found if "To_Account" in r)
    assert peers == sorted(f"peer-{n}" for n in range(150) if n % 6 >= 3)
    assert [r["ToGroupid"] for r in found if "ToGroupid" in r] == ["@TGS#old"]
    assert {r["op"] for r in found} == {"delete_conversation"}
    assert all(r["From_Account"] == "alice" for r in found)
    paths = [r.path for r in emulators.tencent.log]
    assert paths.count("/v4/recentcontact/get_list") == 3  # two pages of alice's, nobody's
    items = [i for i in read_job(out) if isinstance(i, Item)]
    assert len(items) == len(found)
