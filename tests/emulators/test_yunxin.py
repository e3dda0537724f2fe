"""The Yunxin emulator, by raw HTTP: CheckSum auth, recall/delete, history, conversations, 416."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from itertools import count
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from batchrecall.emulators import EmulatorSettings, YunxinEmulator
from tests.emulators.support import FakeClock, client_for

pytestmark = pytest.mark.anyio

APP_KEY = "emulatorappkey0000000000000000"
SECRET = "emulatorsecret"
P2P = "alice|1|bob"
TEAM = "alice|2|team1"
SUPER = "alice|3|super1"
DAY = 86400.0
_nonces = count()


@pytest.fixture
def emulator(clock: FakeClock) -> YunxinEmulator:
    return seeded(YunxinEmulator(clock=clock))


@pytest.fixture
async def client(emulator: YunxinEmulator, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(emulator.app) as client:
        client.event_hooks["request"] = [lambda request: sign(request, clock)]
        yield client


def seeded(emulator: YunxinEmulator) -> YunxinEmulator:
    for conversation_id in (P2P, TEAM, SUPER):
        for n in range(1, 4):
            emulator.state.add_message(conversation_id, 1000 + n)
    for n in range(1, 102):
        emulator.state.add_conversation(f"alice|1|peer{n}")
    return emulator


async def sign(request: httpx.Request, clock: FakeClock) -> None:
    """Adds the four signature headers unless the test set its own."""
    if "CheckSum" in request.headers or "X-Unsigned" in request.headers:
        return
    request.headers.update(headers(clock))


def headers(
    clock: FakeClock, *, nonce: str | None = None, cur: str | None = None
) -> dict[str, str]:
    nonce = f"nonce{next(_nonces)}" if nonce is None else nonce
    cur = str(int(clock.now)) if cur is None else cur
    checksum = hashlib.sha1((SECRET + nonce + cur).encode()).hexdigest()
    return {"AppKey": APP_KEY, "Nonce": nonce, "CurTime": cur, "CheckSum": checksum}


def message_url(conversation_id: str, message_server_id: Any) -> str:
    encoded = conversation_id.replace("|", "%7C")
    return f"/im/v2/conversations/{encoded}/messages/{message_server_id}"


async def remove(
    client: httpx.AsyncClient, conversation_id: str, message_server_id: Any, **query: Any
) -> dict[str, Any]:
    answer = await client.delete(message_url(conversation_id, message_server_id), params=query)
    assert answer.status_code == 200, answer.text  # always HTTP 200 (vendors.md §2.3)
    body: dict[str, Any] = answer.json()
    return body


def is_code(body: dict[str, Any], code: int, *words: str) -> bool:
    return body["code"] == code and all(word in body["msg"] for word in words)


# Signature.


async def test_signed_recall_answers_success(
    client: httpx.AsyncClient, emulator: YunxinEmulator
) -> None:
    body = await remove(client, P2P, 1001, type=2)
    assert body == {"code": 200, "msg": "success", "data": {}}
    assert emulator.state.removed_by(P2P, 1001) == 2


@pytest.mark.parametrize("missing", ["AppKey", "Nonce", "CurTime", "CheckSum"])
async def test_each_signature_header_is_required(
    client: httpx.AsyncClient, clock: FakeClock, missing: str
) -> None:
    sent = headers(clock)
    del sent[missing]
    answer = await client.delete(
        message_url(P2P, 1001), params={"type": 2}, headers=sent | {"X-Unsigned": "1"}
    )
    assert answer.status_code == 200
    assert is_code(answer.json(), 414, missing.lower())


async def _signed_with(client: httpx.AsyncClient, sent: dict[str, str]) -> dict[str, Any]:
    answer = await client.delete(message_url(P2P, 1001), params={"type": 2}, headers=sent)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def test_wrong_appkey_is_414(client: httpx.AsyncClient, clock: FakeClock) -> None:
    body = await _signed_with(client, headers(clock) | {"AppKey": "otherkey"})
    assert is_code(body, 414, "appkey")


async def test_wrong_or_upper_case_checksum_is_414(
    client: httpx.AsyncClient, clock: FakeClock, emulator: YunxinEmulator
) -> None:
    sent = headers(clock)
    assert is_code(await _signed_with(client, sent | {"CheckSum": "0" * 40}), 414, "checksum")
    upper = sent["CheckSum"].upper()
    assert is_code(await _signed_with(client, sent | {"CheckSum": upper}), 414, "checksum")
    other_secret = hashlib.sha1(("x" + sent["Nonce"] + sent["CurTime"]).encode()).hexdigest()
    assert is_code(await _signed_with(client, sent | {"CheckSum": other_secret}), 414, "checksum")
    assert not emulator.state.is_recalled(P2P, 1001)


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-300, True), (300, True), (-301, False), (301, False)]
)
async def test_curtime_must_be_within_five_minutes(
    client: httpx.AsyncClient, clock: FakeClock, offset: int, accepted: bool
) -> None:
    body = await _signed_with(client, headers(clock, cur=str(int(clock.now) + offset)))
    assert body["code"] == 200 if accepted else is_code(body, 414, "curtime")


async def test_curtime_in_milliseconds_is_refused(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    body = await _signed_with(client, headers(clock, cur=str(int(clock.now * 1000))))
    assert is_code(body, 414, "curtime")
    assert is_code(await _signed_with(client, headers(clock, cur="soon")), 414, "curtime")


async def test_nonce_is_at_most_128_characters(client: httpx.AsyncClient, clock: FakeClock) -> None:
    assert is_code(await _signed_with(client, headers(clock, nonce="n" * 129)), 414, "nonce")
    assert (await _signed_with(client, headers(clock, nonce="n" * 128)))["code"] == 200


async def test_a_replayed_nonce_is_refused(client: httpx.AsyncClient, clock: FakeClock) -> None:
    sent = headers(clock)
    assert (await _signed_with(client, sent))["code"] == 200
    assert is_code(await _signed_with(client, sent), 414, "nonce reused")


# Recall and delete of one message.


async def test_recall_twice_is_not_found(client: httpx.AsyncClient) -> None:
    assert (await remove(client, P2P, 1001, type=2))["code"] == 200
    assert await remove(client, P2P, 1001, type=2) == {"code": 404, "msg": "message not found"}
    assert (await remove(client, P2P, 1001, type=1))["code"] == 404


async def test_a_two_way_recall_after_a_one_way_one(client: httpx.AsyncClient) -> None:
    """A one-way recall leaves the sender's copy: a two-way recall still finds the message."""
    assert (await remove(client, P2P, 1001, type=1))["code"] == 200
    assert (await remove(client, P2P, 1001, type=1))["code"] == 404
    assert (await remove(client, P2P, 1001, type=2))["code"] == 200
    assert (await remove(client, P2P, 1001, type=2))["code"] == 404


async def test_unknown_message_is_404(client: httpx.AsyncClient) -> None:
    assert (await remove(client, P2P, 999, type=2))["code"] == 404
    assert (await remove(client, "bob|1|alice", 1001, type=2))["code"] == 404


@pytest.mark.parametrize(
    "conversation_id", ["alice|4|bob", "alice|1", "alice1bob", "|1|bob", "a|1|b|c"]
)
async def test_malformed_conversation_id_is_414(
    client: httpx.AsyncClient, conversation_id: str
) -> None:
    assert is_code(await remove(client, conversation_id, 1001, type=2), 414, "conversation_id")


async def test_double_encoded_conversation_id_is_414(client: httpx.AsyncClient) -> None:
    url = "/im/v2/conversations/alice%257C1%257Cbob/messages/1001"
    body = (await client.delete(url, params={"type": 2})).json()
    assert is_code(body, 414, "conversation_id")


@pytest.mark.parametrize("message_server_id", ["abc", "12a", "-5", "１２"])
async def test_message_server_id_must_be_digits(
    client: httpx.AsyncClient, message_server_id: str
) -> None:
    assert is_code(await remove(client, P2P, message_server_id, type=2), 414, "message_server_id")


@pytest.mark.parametrize("query", [{}, {"type": 0}, {"type": 4}, {"type": "two"}])
async def test_type_is_required_and_1_2_or_3(client: httpx.AsyncClient, query: Any) -> None:
    assert is_code(await remove(client, P2P, 1001, **query), 414, "type")


@pytest.mark.parametrize("name", ["ignore_revoke_time", "ingore_revoke_time"])
@pytest.mark.parametrize("value", ["2", "", "true"])
async def test_ignore_revoke_time_is_0_or_1(
    client: httpx.AsyncClient, name: str, value: str
) -> None:
    body = await remove(client, P2P, 1001, type=2, **{name: value})
    assert is_code(body, 414, name)


async def test_check_team_member_valid_is_a_boolean(client: httpx.AsyncClient) -> None:
    body = await remove(client, TEAM, 1001, type=2, check_team_member_valid="yes")
    assert is_code(body, 414, "check_team_member_valid")
    assert (await remove(client, TEAM, 1001, type=2, check_team_member_valid="false"))[
        "code"
    ] == 200


async def test_description_is_at_most_128_characters(client: httpx.AsyncClient) -> None:
    assert is_code(
        await remove(client, P2P, 1001, type=2, description="d" * 129), 414, "description"
    )
    assert (await remove(client, P2P, 1001, type=2, description="撤" * 128))["code"] == 200


@pytest.mark.parametrize("op", [1, 3])
async def test_one_way_and_delete_refuse_super_teams(
    client: httpx.AsyncClient, emulator: YunxinEmulator, op: int
) -> None:
    assert is_code(await remove(client, SUPER, 1001, type=op), 414, "type")
    assert (await remove(client, SUPER, 1001, type=2))["code"] == 200
    assert (await remove(client, TEAM, 1001, type=op))["code"] == 200
    assert emulator.state.removed_by(TEAM, 1001) == op


async def test_two_way_recall_window(client: httpx.AsyncClient, clock: FakeClock) -> None:
    clock.advance(120)
    assert (await remove(client, P2P, 1001, type=2))["code"] == 200
    clock.advance(1)
    assert await remove(client, P2P, 1002, type=2) == {"code": 508, "msg": "消息撤回时间超限"}


@pytest.mark.parametrize("name", ["ignore_revoke_time", "ingore_revoke_time"])
async def test_ignore_revoke_time_allows_30_days(
    emulator: YunxinEmulator, client: httpx.AsyncClient, clock: FakeClock, name: str
) -> None:
    emulator.state.revoke_flag_names = (name,)
    clock.advance(30 * DAY)
    assert (await remove(client, P2P, 1001, type=2, **{name: 1}))["code"] == 200
    assert (await remove(client, P2P, 1002, type=2, **{name: 0}))["code"] == 508
    clock.advance(1)
    assert (await remove(client, P2P, 1003, type=2, **{name: 1}))["code"] == 508


async def test_by_default_the_server_knows_the_api_pages_spelling_only(
    emulator: YunxinEmulator, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    assert emulator.state.revoke_flag_names == ("ingore_revoke_time",)  # seed 003
    clock.advance(DAY)
    body = await remove(client, P2P, 1001, type=2, ignore_revoke_time=1)
    assert is_code(body, 414, "unknown parameter", "ignore_revoke_time")
    assert (await remove(client, P2P, 1001, type=2, ingore_revoke_time=1))["code"] == 200


@pytest.mark.parametrize(
    ("known", "unknown"),
    [("ingore_revoke_time", "ignore_revoke_time"), ("ignore_revoke_time", "ingore_revoke_time")],
)
async def test_a_lenient_server_ignores_the_spelling_it_does_not_know(
    emulator: YunxinEmulator,
    client: httpx.AsyncClient,
    clock: FakeClock,
    known: str,
    unknown: str,
) -> None:
    emulator.state.revoke_flag_names = (known,)
    emulator.state.strict_params = False
    clock.advance(DAY)
    assert (await remove(client, P2P, 1001, type=2, **{unknown: 1}))["code"] == 508
    assert (await remove(client, P2P, 1001, type=2, **{unknown: "x"}))["code"] == 508
    assert (await remove(client, P2P, 1001, type=2, **{known: 1}))["code"] == 200


@pytest.mark.parametrize(
    ("method", "url", "query"),
    [
        ("DELETE", message_url(P2P, 1001), {"type": 2, "notify": "true"}),
        ("DELETE", "/im/v2/conversations/alice%7C1%7Cpeer1/messages", {"type": 3, "x": "1"}),
        ("DELETE", "/im/v2/conversations/alice%7C1%7Cpeer1", {"clear_message": "true", "x": "1"}),
        (
            "DELETE",
            "/im/v2/conversations/actions/conversation_ids",
            {"conversation_ids": "alice%7C1%7Cpeer1", "x": "1"},
        ),
        ("GET", "/im/v2.1/conversations", {"account_id": "alice", "limit": 1, "x": "1"}),
    ],
)
async def test_strict_mode_refuses_parameters_an_endpoint_does_not_document(
    emulator: YunxinEmulator,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    query: dict[str, Any],
) -> None:
    assert emulator.state.strict_params, "on by default"
    answer = await client.request(method, url, params=query)
    body = answer.json()
    assert body["code"] == 414, body
    assert "unknown parameter" in body["msg"]
    assert emulator.state.conversation_exists("alice|1|peer1")
    assert not emulator.state.is_recalled(P2P, 1001)


async def test_a_team_message_whose_sender_left_the_team_needs_the_check_lifted(
    emulator: YunxinEmulator, client: httpx.AsyncClient
) -> None:
    """v1 recall page: a sender who left the group gets 403 "not allow!"; seed 003's
    check_team_member_valid=false (default true) skips the membership check."""
    emulator.state.leave_team("team1", "alice")
    assert await remove(client, TEAM, 1001, type=2) == {"code": 403, "msg": "not allow!"}
    body = await remove(client, TEAM, 1001, type=2, check_team_member_valid="true")
    assert body["code"] == 403
    assert not emulator.state.is_recalled(TEAM, 1001)
    assert (await remove(client, TEAM, 1001, type=2, check_team_member_valid="false"))[
        "code"
    ] == 200
    assert (await remove(client, TEAM, 1002, type=3, check_team_member_valid="false"))[
        "code"
    ] == 200
    assert (await remove(client, P2P, 1001, type=2))["code"] == 200, "a P2P message is no team's"


async def test_conversation_list_is_read_only_and_signed(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    answer = await client.get("/im/v2.1/conversations", params={"account_id": "alice", "limit": 2})
    body = answer.json()
    assert body["code"] == 200
    assert [item["conversation_id"] for item in body["data"]["items"]] == [P2P, TEAM]
    assert body["data"]["has_more"] is True
    page = await client.get(
        "/im/v2.1/conversations",
        params={"account_id": "alice", "limit": 100, "page_token": body["data"]["next_token"]},
    )
    assert len(page.json()["data"]["items"]) == 100  # 104 in all, 2 on the first page
    nobody = await client.get("/im/v2.1/conversations", params={"account_id": "x", "limit": 1})
    assert nobody.json()["data"] == {"items": [], "has_more": False, "next_token": ""}
    for limit in (0, 101, "a"):
        bad = await client.get("/im/v2.1/conversations", params={"account_id": "a", "limit": limit})
        assert is_code(bad.json(), 414, "limit")
    unsigned = await client.get(
        "/im/v2.1/conversations",
        params={"account_id": "alice", "limit": 1},
        headers={**headers(clock), "CheckSum": "0" * 40},
    )
    assert unsigned.json()["code"] == 414


@pytest.mark.parametrize("op", [1, 3])
async def test_one_way_and_delete_reach_30_days(
    client: httpx.AsyncClient, clock: FakeClock, op: int
) -> None:
    clock.advance(30 * DAY)
    assert (await remove(client, P2P, 1001, type=op))["code"] == 200
    clock.advance(1)
    assert (await remove(client, P2P, 1002, type=op))["code"] == 508


async def test_recall_window_follows_the_settings(clock: FakeClock) -> None:
    emulator = seeded(YunxinEmulator(EmulatorSettings(recall_window_s=3600), clock=clock))
    async with client_for(emulator.app) as client:
        clock.advance(3600)
        answer = await client.delete(
            message_url(P2P, 1001), params={"type": 2}, headers=headers(clock)
        )
    assert answer.json()["code"] == 200


# Clear history and delete conversations.


async def test_clear_history(client: httpx.AsyncClient, emulator: YunxinEmulator) -> None:
    url = "/im/v2/conversations/alice%7C1%7Cbob/messages"
    assert (await client.delete(url, params={"type": 1})).json()["code"] == 200
    assert emulator.state.history_cleared(P2P) == {"roaming"}
    assert (await client.delete(url, params={"type": 3})).json()["code"] == 200
    assert emulator.state.history_cleared(P2P) == {"roaming", "history"}


@pytest.mark.parametrize("query", [{}, {"type": 4}])
async def test_clear_history_needs_a_type(client: httpx.AsyncClient, query: Any) -> None:
    answer = await client.delete("/im/v2/conversations/alice%7C1%7Cbob/messages", params=query)
    assert is_code(answer.json(), 414, "type")


async def test_clear_history_of_unknown_conversation_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.delete("/im/v2/conversations/zed%7C1%7Cbob/messages", params={"type": 2})
    assert answer.json() == {"code": 404, "msg": "conversation not found"}


async def test_delete_one_conversation(client: httpx.AsyncClient, emulator: YunxinEmulator) -> None:
    url = "/im/v2/conversations/alice%7C2%7Cteam1"
    assert is_code(
        (await client.delete(url, params={"clear_message": "yes"})).json(), 414, "clear_message"
    )
    assert (await client.delete(url, params={"clear_message": "true"})).json()["code"] == 200
    assert not emulator.state.conversation_exists(TEAM)
    assert emulator.state.removed_by(TEAM, 1001) == 3
    assert (await client.delete(url)).json()["code"] == 404


def batch_url(ids: list[str]) -> str:
    encoded = ",".join(conversation_id.replace("|", "%7C") for conversation_id in ids)
    return f"/im/v2/conversations/actions/conversation_ids?conversation_ids={encoded}"


async def test_batch_delete_reports_successes_and_failures(
    client: httpx.AsyncClient, emulator: YunxinEmulator
) -> None:
    answer = await client.delete(batch_url([P2P, "zed|1|bob", "alice|1|peer1"]))
    assert answer.json() == {
        "code": 200,
        "msg": "success",
        "data": {
            "success_list": [P2P, "alice|1|peer1"],
            "failed_list": [
                {
                    "conversation_id": "zed|1|bob",
                    "error_code": 404,
                    "error_msg": "conversation not found",
                }
            ],
        },
    }
    assert not emulator.state.conversation_exists(P2P)
    assert not emulator.state.is_recalled(P2P, 1001)  # clear_message defaults to false


async def test_batch_delete_of_exactly_100_is_accepted(
    client: httpx.AsyncClient, emulator: YunxinEmulator
) -> None:
    ids = [f"alice|1|peer{n}" for n in range(1, 101)]
    data = (await client.delete(batch_url(ids))).json()["data"]
    assert (len(data["success_list"]), data["failed_list"]) == (100, [])


async def test_batch_delete_of_101_is_refused(
    client: httpx.AsyncClient, emulator: YunxinEmulator
) -> None:
    ids = [f"alice|1|peer{n}" for n in range(1, 102)]
    assert (await client.delete(batch_url(ids))).json() == {"code": 419, "msg": "数量超过上限"}
    assert emulator.state.conversation_exists("alice|1|peer1")


async def test_batch_delete_accepts_encoded_ids_in_an_encoded_value(
    client: httpx.AsyncClient,
) -> None:
    value = ",".join(quote(conversation_id, safe="") for conversation_id in (P2P, "alice|1|peer1"))
    url = "/im/v2/conversations/actions/conversation_ids"
    answer = await client.delete(url, params={"conversation_ids": value})
    assert "alice%257C1%257Cbob%2Calice" in str(answer.request.url)
    assert answer.json()["data"]["success_list"] == [P2P, "alice|1|peer1"]


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("", "conversation_ids"),
        ("?conversation_ids=", "conversation_ids"),
        ("?conversation_ids=alice%7C1%7Cbob,oops", "conversation_id"),
        ("?conversation_ids=alice%7C1%7Cbob&clear_message=1", "clear_message"),
    ],
)
async def test_batch_delete_parameter_errors(
    client: httpx.AsyncClient, emulator: YunxinEmulator, query: str, word: str
) -> None:
    answer = await client.delete(f"/im/v2/conversations/actions/conversation_ids{query}")
    assert is_code(answer.json(), 414, word)
    assert emulator.state.conversation_exists(P2P)


async def test_batch_delete_with_clear_message_deletes_messages(
    client: httpx.AsyncClient, emulator: YunxinEmulator
) -> None:
    answer = await client.delete(batch_url([P2P]) + "&clear_message=true")
    assert answer.json()["code"] == 200
    assert (await remove(client, P2P, 1001, type=2))["code"] == 404


# Rate limit, faults and the request log.


async def test_rate_limit_answers_416_and_blocks_for_10_seconds(clock: FakeClock) -> None:
    emulator = seeded(YunxinEmulator(EmulatorSettings(rate=2), clock=clock))
    async with client_for(emulator.app) as client:
        client.event_hooks["request"] = [lambda request: sign(request, clock)]
        assert (await remove(client, P2P, 1001, type=2))["code"] == 200
        assert (await remove(client, P2P, 1002, type=2))["code"] == 200
        throttled = {"code": 416, "msg": "Too many requests within a short period of time"}
        assert await remove(client, P2P, 1003, type=2) == throttled
        clock.advance(9.9)
        assert await remove(client, P2P, 1003, type=2) == throttled
        clock.advance(0.1)
        assert (await remove(client, P2P, 1003, type=2))["code"] == 200


async def test_gateway_fault_is_plain_http_502(
    client: httpx.AsyncClient, emulator: YunxinEmulator
) -> None:
    emulator.faults.push("http_502")
    answer = await client.delete(message_url(P2P, 1001), params={"type": 2})
    assert (answer.status_code, answer.text) == (502, "Bad Gateway")
    assert not emulator.state.is_recalled(P2P, 1001)


async def test_body_500_and_throttle_faults(
    client: httpx.AsyncClient, emulator: YunxinEmulator
) -> None:
    emulator.faults.push("code_500")
    emulator.faults.push("throttle", retry_after=10)
    assert await remove(client, P2P, 1001, type=2) == {"code": 500, "msg": "server error"}
    answer = await client.delete(message_url(P2P, 1001), params={"type": 2})
    assert (answer.status_code, answer.json()["code"]) == (200, 416)
    assert answer.headers["retry-after"] == "10"
    assert not emulator.state.is_recalled(P2P, 1001)


async def test_random_faults_are_502_or_body_500(clock: FakeClock) -> None:
    emulator = seeded(YunxinEmulator(EmulatorSettings(fault_rate=1.0), clock=clock))
    async with client_for(emulator.app) as client:
        client.event_hooks["request"] = [lambda request: sign(request, clock)]
        answers = [
            await client.delete(message_url(P2P, 1001), params={"type": 2}) for _ in range(20)
        ]
    kinds = {(a.status_code, a.json()["code"] if a.status_code == 200 else None) for a in answers}
    assert kinds == {(502, None), (200, 500)}
    assert not emulator.state.is_recalled(P2P, 1001)


async def test_log_holds_decoded_paths_and_items(
    client: httpx.AsyncClient, emulator: YunxinEmulator, clock: FakeClock
) -> None:
    await remove(client, P2P, 1001, type=2, description="x")
    await client.delete(batch_url([P2P, TEAM]))
    await client.delete(message_url(P2P, 1002), params={"type": 2}, headers={"X-Unsigned": "1"})
    single, many, unsigned = emulator.log
    assert single.path == "/im/v2/conversations/alice|1|bob/messages/1001"
    assert (single.query, single.items, single.code) == (
        {"type": "2", "description": "x"},
        ("1001",),
        200,
    )
    assert many.items == (P2P, TEAM)
    assert (unsigned.status, unsigned.code, unsigned.items) == (200, 414, ("1002",))
    assert single.body is None
