"""`collect yunxin`: search by sender (at most 5 a call, paged, a day a window) and per-conversation
history, from the emulator over HTTP; the wire checked against the documented shapes."""

from __future__ import annotations

import itertools
import random
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
from batchrecall.collect.history_calls import HistoryLane
from batchrecall.collect.history_run import HistoryRequest, collect_history
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, RowSink
from batchrecall.config import parse_config
from batchrecall.emulators.server import EmulatorSet
from batchrecall.errors import (
    ErrorCode,
    PermanentCallError,
    ThrottledError,
    TransientCallError,
)
from batchrecall.intake.reader import read_job
from batchrecall.models import Item, Vendor
from batchrecall.results.manifest import manifest_path
from batchrecall.run.clock import VirtualClock
from batchrecall.run.limits import MemoryPermitStore, window_for_rate
from batchrecall.run.retry import RetryPolicy
from batchrecall.vendors.yunxin_history import (
    conversation_messages_path,
    message_from_item,
    read_page,
    search_path,
)
from tests.collect_server import Gate, served

HOUR_S = 3600.0


def rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def seeded(now: float) -> EmulatorSet:
    """Messages of several senders and times: spammer-7's in and out of a 6-hour window."""
    emulators = EmulatorSet()
    state = emulators.yunxin.state
    state.add_message("spammer-7|1|alice", 1001, sent_at=now - 1 * HOUR_S)
    state.add_message("spammer-7|1|bob", 1002, sent_at=now - 2 * HOUR_S)
    state.add_message("spammer-7|2|team-9", 1003, sent_at=now - 3 * HOUR_S)
    state.add_message("spammer-7|1|carol", 1004, sent_at=now - 30 * HOUR_S)  # outside
    state.add_message("alice|1|spammer-7", 1005, sent_at=now - 1 * HOUR_S)  # alice's
    state.add_message("bob|2|team-9", 1006, sent_at=now - 1 * HOUR_S)  # bob's
    state.add_message("spammer-8|1|dave", 1007, sent_at=now - 4 * HOUR_S)
    state.add_conversation("alice|1|spammer-7")
    return emulators


def collect(tmp_path: Path, *args: str) -> tuple[int, Path]:
    out = tmp_path / "spam.jsonl"
    code = main(["collect", "yunxin", "--config", str(tmp_path / "c.toml"),
                 "--out", str(out), *args])  # fmt: skip
    return code, out


# The wire, against the shapes the research quotes.


def test_search_request_is_the_documented_one() -> None:
    # [DOC §4.2] GET /im/v2.1/messages/actions/search_messages: operator_id, sender_account_ids
    # (comma list, at most 5), start_time (ms), time_period (ms span), page_token, limit (<=100)
    path = search_path(operator="s1", senders=["s1", "s2"], start_ms=1000, period_ms=86400000,
                       page_token="tok")  # fmt: skip
    split = urlsplit(path)
    assert split.path == "/im/v2.1/messages/actions/search_messages"
    assert parse_qs(split.query) == {
        "operator_id": ["s1"], "sender_account_ids": ["s1,s2"], "start_time": ["1000"],
        "time_period": ["86400000"], "limit": ["100"], "page_token": ["tok"],
    }  # fmt: skip
    with pytest.raises(ValueError, match="1 to 5"):
        search_path(operator="s", senders=["a", "b", "c", "d", "e", "f"], start_ms=0, period_ms=1)


def test_conversation_history_request() -> None:
    # [SDK §4.1] GET /im/v2.1/conversations/{conversation_id}/messages begin_time end_time limit
    path = conversation_messages_path("a|1|b", begin_ms=1, end_ms=2)
    assert path == "/im/v2.1/conversations/a%7C1%7Cb/messages?begin_time=1&end_time=2&limit=100"


def test_answer_items_make_recall_ids() -> None:
    # [SDK QueryMessagesByPageResponseV2 / DOC apifox envelope] {"code":200,"msg":"success",
    # "data":{"has_more","next_token","items":[...]}}, message_server_id a Long
    answer = {"code": 200, "msg": "success", "data": {"count": 2, "has_more": True,
              "next_token": "n2", "items": [
        {"message_server_id": 9007199254740993, "message_client_id": "c1",
         "conversation_type": 1, "sender_id": "s", "receiver_id": "r", "create_time": 17,
         "message_type": 0, "text": "hi"},
        {"message_server_id": 12, "conversation_type": 2, "sender_id": "s", "team_id": 55,
         "create_time": 18},
        {"message_server_id": 13, "conversation_type": 2, "sender_id": "s", "create_time": 1},
    ]}}  # fmt: skip
    page = read_page(httpx.Response(200, content=orjson.dumps(answer)), now=0.0)
    assert (page.has_more, page.next_token) == (True, "n2")
    first, second, third = (message_from_item(item) for item in page.items)
    assert first is not None
    assert (first.conversation_id, first.message_server_id) == ("s|1|r", "9007199254740993")
    assert second is not None
    assert second.conversation_id == "s|2|55"
    assert third is None  # no team_id


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [(200, {"code": 416, "msg": "Too many"}, "ThrottledError"),
     (429, {}, "ThrottledError"),
     (502, {}, "TransientCallError"),
     (200, {"code": 500}, "TransientCallError"),
     (200, {"code": 414, "msg": "bad"}, "PermanentCallError"),
     (401, {}, "LaneFatalError")],
)  # fmt: skip
def test_answer_errors(status: int, body: dict[str, Any], kind: str) -> None:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the class name is checked
        read_page(httpx.Response(status, content=orjson.dumps(body)), now=0.0)
    assert type(caught.value).__name__ == kind


# Over HTTP, as the operator runs it.


def test_search_finds_exactly_the_senders_messages_in_the_window(tmp_path: Path) -> None:
    emulators = seeded(time.time())
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "6h")
    assert code == 0
    found = rows(out)
    assert sorted(r["message_server_id"] for r in found) == ["1001", "1002", "1003"]
    team = next(r for r in found if r["message_server_id"] == "1003")
    assert team["conversation_id"] == "spammer-7|2|team-9"
    assert team["check_team_member_valid"] is False
    assert all(r["vendor"] == "yunxin" and r["op"] == "recall" for r in found)
    assert all(isinstance(r["sent_at"], int) for r in found)
    assert all(isinstance(item, Item) for item in read_job(out))
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert manifest["found"]["items"] == 3
    assert manifest["sources"][0]["search"] == {"operator": "spammer-7", "senders": ["spammer-7"]}
    searches = [r for r in emulators.yunxin.log if "search_messages" in r.path]
    assert searches


def test_search_pages_and_windows(tmp_path: Path) -> None:
    now = time.time()
    emulators = EmulatorSet()
    for n in range(250):  # three pages in the last day, then one a day back
        age = 60 + n * 300 if n < 240 else 86400 + (n - 240) * 15000
        emulators.yunxin.state.add_message(f"spammer-7|1|v{n % 7}", 5000 + n,
                                           sent_at=now - age)  # fmt: skip
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "3d")
    assert code == 0
    ids = [r["message_server_id"] for r in rows(out)]
    assert sorted(ids) == sorted(str(5000 + n) for n in range(250))
    tokens = [r for r in emulators.yunxin.log if "page_token" in r.query]
    assert tokens  # more than one page was read
    # the calls made are counted (each through the history lane's window), not assumed
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert manifest["calls"] == {"history": len(emulators.yunxin.log), "retries": 0}


def test_operator_searches_five_senders_a_call(tmp_path: Path) -> None:
    now = time.time()
    emulators = EmulatorSet()
    senders = [f"s{n}" for n in range(7)]
    for n, sender in enumerate(senders):
        emulators.yunxin.state.add_message(f"{sender}|1|mod", 100 + n, sent_at=now - 60)
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", *senders, "--since", "1h", "--operator", "mod")
    assert code == 0
    assert len(rows(out)) == 7
    lists = [r.query["sender_account_ids"]
             for r in emulators.yunxin.log if "search_messages" in r.path]  # fmt: skip
    assert lists == ["s0,s1,s2,s3,s4", "s5,s6"]


def test_conversation_history_filters_the_sender(tmp_path: Path) -> None:
    emulators = seeded(time.time())
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "6h",
                            "--conversation", "alice|1|spammer-7")  # fmt: skip
    assert code == 0
    assert [r["message_server_id"] for r in rows(out)] == ["1001"]


def test_conversation_history_falls_back_to_v2(tmp_path: Path) -> None:
    emulators = seeded(time.time())
    emulators.yunxin.state.history_v21 = False
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "6h",
                            "--conversation", "x|2|team-9")  # fmt: skip
    assert code == 0
    assert [r["message_server_id"] for r in rows(out)] == ["1003"]
    assert any(r.path.startswith("/im/v2/conversations/") for r in emulators.yunxin.log)


def test_recalled_messages_are_not_found_again(tmp_path: Path) -> None:
    emulators = seeded(time.time())
    emulators.yunxin.state.remove_message("spammer-7|1|alice", "1001", op=2,
                                          ignore_revoke_time=True)  # fmt: skip
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "6h")
    assert code == 0
    assert sorted(r["message_server_id"] for r in rows(out)) == ["1002", "1003"]


def test_unknown_sender_is_exit_1_and_no_file(tmp_path: Path, capsys: Any) -> None:
    emulators = seeded(time.time())
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "nobody-42", "--since", "6h")
    assert code == 1
    assert not out.exists()
    assert "nobody-42" in capsys.readouterr().err


def test_nothing_matched_is_exit_1(tmp_path: Path) -> None:
    emulators = seeded(time.time())
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-8", "--since", "1h")
    assert code == 1
    assert not out.exists()


# The lane's permits and retries (virtual time).


def lane(rate: float = 2.0, attempts: int = 4) -> tuple[HistoryLane, VirtualClock]:
    clock = VirtualClock()
    store = MemoryPermitStore(clock=clock)
    policy = RetryPolicy(max_attempts=attempts)
    window = window_for_rate(rate)
    return HistoryLane(key="yunxin:k:history", window=window, store=store, policy=policy,
                       clock=clock, rng=random.Random(1)), clock  # fmt: skip


def scripted(*answers: Exception | str) -> Any:
    pending = list(answers)
    sent: list[float] = []

    async def send(clock: VirtualClock) -> str:
        sent.append(clock.now())
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return send, sent


@pytest.mark.anyio
async def test_throttle_pauses_the_lane_then_goes_on() -> None:
    history, clock = lane()
    send, sent = scripted(ThrottledError(ErrorCode.RATE_LIMITED, "416", retry_after=10.0), "ok")
    assert await history.call("search", lambda: send(clock)) == "ok"
    assert sent[1] - sent[0] >= 10.0
    assert history.retries == 1


@pytest.mark.anyio
async def test_transient_failures_retry_up_to_the_policy() -> None:
    history, clock = lane(attempts=3)
    boom = TransientCallError(ErrorCode.VENDOR_UNAVAILABLE, "502")
    send, sent = scripted(boom, boom, boom, "never")
    with pytest.raises(TransientCallError):
        await history.call("search", lambda: send(clock))
    assert len(sent) == 3


@pytest.mark.anyio
async def test_a_refusal_is_not_sent_again() -> None:
    history, clock = lane()
    send, sent = scripted(PermanentCallError(ErrorCode.VENDOR_ERROR, "no"), "never")
    with pytest.raises(PermanentCallError):
        await history.call("search", lambda: send(clock))
    assert len(sent) == 1


@pytest.mark.anyio
async def test_calls_keep_the_history_rate() -> None:
    history, clock = lane(rate=0.5)
    send, sent = scripted(*["ok"] * 4)
    for _ in range(4):
        await history.call("search", lambda: send(clock))
    assert all(later - earlier >= 2.0 for earlier, later in itertools.pairwise(sent))


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--conversation", "not-an-id"], "owner|type|other"),
     (["--chat-type", "chat"], "--chat-type is Easemob's"),
     (["--op", "delete_conversation"], "invalid choice"),
     (["--emulate"], "--emulate needs no --config"),
     (["--since", "yesterday"], "--since 'yesterday'")],
)  # fmt: skip
def test_bad_options_exit_2(tmp_path: Path, capsys: Any, args: list[str], words: str) -> None:
    (tmp_path / "c.toml").write_text("", encoding="utf-8")
    base = ["--sender", "spammer-7", "--since", "6h"]
    try:
        code, _ = collect(tmp_path, *base, *args)
    except SystemExit as exited:  # argparse's own refusals
        code = int(str(exited.code))
    assert code == 2
    assert words in capsys.readouterr().err


def test_max_items_and_dry_run(tmp_path: Path, capsys: Any) -> None:
    emulators = seeded(time.time())
    with served(emulators, tmp_path / "c.toml"):
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "6h", "--max-items", "2")
        assert code == 0
        assert len(rows(out)) == 2
        assert "Stopped at --max-items 2" in capsys.readouterr().out
        out.unlink()
        code, out = collect(tmp_path, "--sender", "spammer-7", "--since", "6h", "--dry-run")
    assert code == 0
    assert not out.exists()
    assert "3 items" in capsys.readouterr().out


def test_csv_job_file_keeps_every_field(tmp_path: Path) -> None:
    emulators = seeded(time.time())
    out = tmp_path / "spam.csv"
    with served(emulators, tmp_path / "c.toml"):
        code = main(["collect", "yunxin", "--config", str(tmp_path / "c.toml"), "--out", str(out),
                     "--sender", "spammer-7", "--since", "6h"])  # fmt: skip
    assert code == 0
    items = [item for item in read_job(out) if isinstance(item, Item)]
    assert sorted(item.target for item in items) == ["1001", "1002", "1003"]
    team = next(item for item in items if item.target == "1003")
    assert team.params["check_team_member_valid"] is False


def test_senders_searches_run_side_by_side() -> None:
    # Each search is a chain of pages; chains side by side keep the lane's history rate
    # whatever one call's round trip (a chain alone makes at most one call a round trip).
    now = time.time()
    emulators = EmulatorSet()
    senders = tuple(f"spammer-{n}" for n in range(CHAINS + 1))
    for s, sender in enumerate(senders):
        for n in range(3):
            emulators.yunxin.state.add_message(f"{sender}|1|v{n}", 100 * s + n, sent_at=now - 60)
    raw = tomllib.loads(emulators.config_toml("http://127.0.0.1"))
    config = parse_config(raw, environ={}, source="test")
    gate = Gate(httpx.ASGITransport(app=emulators.app), CHAINS)
    query = Query(vendor=Vendor.YUNXIN, app="default", senders=senders,
                  since_ms=int((now - 3600) * 1000), until_ms=None, ref="t")  # fmt: skip
    sink = RowSink(query, None, Collected())
    request = HistoryRequest(query=query, config=config, now_ms=int(now * 1000), transport=gate)
    collected = collect_history(request, sink)
    assert collected.error == ""
    assert collected.found.items == 3 * len(senders)
    searched = [source["search"] for source in collected.sources]
    assert searched == [{"operator": sender, "senders": [sender]} for sender in senders]
