"""The Easemob emulator, by raw HTTP: tokens, recall (single and batch), user_channel, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from batchrecall.emulators import ConnectionDropped, EasemobEmulator, EmulatorSettings
from tests.emulators.support import FakeClock, client_for

pytestmark = pytest.mark.anyio

APP = "/demo-org/demo-app"
CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "YXA6emulator-client-id",
    "client_secret": "YXA6emulator-client-secret",
}
ERROR_KEYS = {"error", "exception", "timestamp", "duration", "error_description"}
DAY = 86400.0
INVALID_BODY = "Request body is invalid. Please check body is correct."
CORRUPT = "Unable to authenticate due to corrupt access token"


@pytest.fixture
def emulator(clock: FakeClock) -> EasemobEmulator:
    return seeded(EasemobEmulator(clock=clock))


@pytest.fixture
async def client(emulator: EasemobEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(emulator.app) as client:
        yield client


def seeded(emulator: EasemobEmulator) -> EasemobEmulator:
    """Messages m1..m40 from u1 to u2, sent now; group message g1; user u1 with a chat."""
    for n in range(1, 41):
        emulator.state.add_message(f"m{n}", sender="u1", to="u2", chat_type="chat")
    emulator.state.add_message("g1", sender="u1", to="group1", chat_type="groupchat")
    emulator.state.add_conversation("u1", "u2", "chat")
    return emulator


async def auth(client: httpx.AsyncClient, **extra: Any) -> dict[str, str]:
    answer = await client.post(f"{APP}/token", json=CREDENTIALS | extra)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def item(msg_id: str, to: str = "u2", chat_type: str = "chat", force: bool = False) -> Any:
    return {"msg_id": msg_id, "to": to, "chat_type": chat_type, "force": force}


async def recall(client: httpx.AsyncClient, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await client.post(f"{APP}/messages/msg_recall", json=body, headers=headers)


async def batch(
    client: httpx.AsyncClient, msgs: list[Any], headers: dict[str, str]
) -> httpx.Response:
    return await client.post(f"{APP}/messages/batch_recall", json={"msgs": msgs}, headers=headers)


async def delete_channel(
    client: httpx.AsyncClient, username: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    url = f"{APP}/users/{username}/user_channel"
    return await client.request("DELETE", url, content=body, headers=headers)


def assert_error(answer: httpx.Response, status: int, error: str, description: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == ERROR_KEYS
    assert (body["error"], body["error_description"]) == (error, description)


# Tokens.


async def test_token_answers_the_documented_fields(client: httpx.AsyncClient) -> None:
    answer = await client.post(f"{APP}/token", json=CREDENTIALS)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "expires_in", "application"}
    assert body["expires_in"] == 7200
    assert body["access_token"].startswith("YWMt")


async def test_token_expires_after_its_ttl(client: httpx.AsyncClient, clock: FakeClock) -> None:
    headers = await auth(client, ttl=60)
    clock.advance(59.9)
    assert (await recall(client, item("m1"), headers)).status_code == 200
    clock.advance(0.1)
    answer = await recall(client, item("m2"), headers)
    expired = "Unable to authenticate due to expired access token"
    assert_error(answer, 401, "unauthorized", expired)


async def test_token_with_ttl_zero_never_expires(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    answer = await client.post(f"{APP}/token", json=CREDENTIALS | {"ttl": 0})
    assert answer.json()["expires_in"] == 0
    clock.advance(3650 * DAY)
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    assert (await recall(client, item("m1", force=True), headers)).status_code == 200


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        ({"client_id": None}, "illegal_argument", "client_id must be provided."),
        ({"client_secret": ""}, "illegal_argument", "client_secret must be provided"),
        ({"client_id": "YXA6other"}, "invalid_grant", "client_id does not match"),
        ({"client_secret": "YXA6other"}, "invalid_grant", "client_secret does not match"),
        ({"grant_type": None}, "illegal_argument", "grant_type must be provided."),
        ({"grant_type": "password"}, "unsupported_grant_type", "unsupported grant: password"),
        ({"ttl": -1}, "illegal_argument", "ttl must be a non-negative integer"),
    ],
)
async def test_token_errors(
    client: httpx.AsyncClient, change: dict[str, Any], error: str, description: str
) -> None:
    body = {key: value for key, value in (CREDENTIALS | change).items() if value is not None}
    assert_error(await client.post(f"{APP}/token", json=body), 400, error, description)


async def test_token_for_an_unknown_app_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.post("/demo-org/other-app/token", json=CREDENTIALS)
    assert answer.status_code == 404
    assert answer.json()["error"] == "organization_application_not_found"


async def test_token_body_must_be_json(client: httpx.AsyncClient) -> None:
    answer = await client.post(f"{APP}/token", content=b"grant_type=client_credentials")
    assert_error(answer, 400, "invalid_request_body", INVALID_BODY)


async def test_token_requests_do_not_count_against_the_api_rate(clock: FakeClock) -> None:
    emulator = seeded(EasemobEmulator(EmulatorSettings(rate=1), clock=clock))
    async with client_for(emulator.app) as client:
        for _ in range(3):
            headers = await auth(client)
        assert (await recall(client, item("m1"), headers)).status_code == 200


async def test_token_endpoint_has_its_own_limit_of_300_a_second(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for _ in range(300):
        assert (await client.post(f"{APP}/token", json=CREDENTIALS)).status_code == 200
    answer = await client.post(f"{APP}/token", json=CREDENTIALS)
    assert_error(answer, 429, "reach_limit", "This request has reached api limit")
    clock.advance(1.0)
    assert (await client.post(f"{APP}/token", json=CREDENTIALS)).status_code == 200


# Authorization.


@pytest.mark.parametrize(
    ("header", "error", "description"),
    [
        (None, "unauthorized", "Unable to authenticate due to expired access token"),
        ("Basic abc", "auth_bad_access_token", CORRUPT),
        ("Bearer garbage", "auth_bad_access_token", CORRUPT),
        ("Bearer YWMtneverissued", "auth_bad_access_token", "Unable to authenticate"),
    ],
)
async def test_calls_without_a_valid_token_are_401(
    client: httpx.AsyncClient, header: str | None, error: str, description: str
) -> None:
    headers = {} if header is None else {"Authorization": header}
    assert_error(await recall(client, item("m1"), headers), 401, error, description)


async def test_expire_tokens_forces_a_401(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    headers = await auth(client)
    emulator.state.expire_tokens()
    assert (await recall(client, item("m1"), headers)).json()["error"] == "unauthorized"
    assert (await recall(client, item("m1"), await auth(client))).status_code == 200


# msg_recall.


async def test_recall_answers_the_documented_envelope(
    client: httpx.AsyncClient, emulator: EasemobEmulator, clock: FakeClock
) -> None:
    body = item("m1") | {"from": "u1"}
    answer = await recall(client, body, await auth(client))
    assert answer.status_code == 200
    envelope = answer.json()
    assert envelope["path"] == "/messages/msg_recall"
    assert envelope["uri"] == f"http://emulator{APP}/messages/msg_recall"
    assert envelope["timestamp"] == int(clock.now * 1000)
    assert (envelope["organization"], envelope["applicationName"]) == ("demo-org", "demo-app")
    assert envelope["action"] == "post"
    assert {"application", "duration"} <= set(envelope)
    data = {"recalled": "yes", "chattype": "chat", "from": "u1", "to": "u2", "msg_id": "m1"}
    assert envelope["data"] == data
    assert emulator.state.is_recalled("m1")


async def test_recall_from_defaults_to_admin(client: httpx.AsyncClient) -> None:
    answer = await recall(
        client, item("g1", to="group1", chat_type="groupchat"), await auth(client)
    )
    assert answer.json()["data"]["from"] == "admin"


@pytest.mark.parametrize("field", ["msg_id", "to", "chat_type", "force"])
@pytest.mark.parametrize("absent", ["missing", "null", "empty"])
async def test_recall_requires_every_documented_field(
    client: httpx.AsyncClient, emulator: EasemobEmulator, field: str, absent: str
) -> None:
    body = item("m1")
    if absent == "missing":
        del body[field]
    else:
        body[field] = None if absent == "null" else ""
    answer = await recall(client, body, await auth(client))
    assert_error(answer, 400, "message_recall_error", f"param {field} can't be empty")
    assert not emulator.state.is_recalled("m1")


@pytest.mark.parametrize(
    "change", [{"msg_id": 1}, {"force": "true"}, {"to": ["u2"]}, {"from": 7}, {"sync_device": 1}]
)
async def test_recall_refuses_wrongly_typed_fields(
    client: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    answer = await recall(client, item("m1") | change, await auth(client))
    assert_error(answer, 400, "invalid_request_body", INVALID_BODY)


async def test_recall_refuses_an_unknown_chat_type(client: httpx.AsyncClient) -> None:
    answer = await recall(client, item("m1", chat_type="p2p"), await auth(client))
    assert_error(answer, 400, "message_recall_error", "param chat_type is illegal")


async def test_recall_of_unknown_or_recalled_message_is_not_found(
    client: httpx.AsyncClient,
) -> None:
    headers = await auth(client)
    assert_error(
        await recall(client, item("nope"), headers), 403, "message_recall_error", "not_found msg"
    )
    assert (await recall(client, item("m1"), headers)).status_code == 200
    assert_error(
        await recall(client, item("m1"), headers), 403, "message_recall_error", "not_found msg"
    )


@pytest.mark.parametrize("change", [{"to": "u3"}, {"chat_type": "groupchat"}])
async def test_recall_with_the_wrong_recipient_cannot_find_msg_to(
    client: httpx.AsyncClient, emulator: EasemobEmulator, change: dict[str, str]
) -> None:
    answer = await recall(client, item("m1") | change, await auth(client))
    assert_error(answer, 400, "message_recall_error", "can't find msg to")
    assert not emulator.state.is_recalled("m1")


@pytest.mark.parametrize("force", [False, True])
async def test_recall_window_is_two_minutes_even_with_force(
    client: httpx.AsyncClient, clock: FakeClock, force: bool
) -> None:
    headers = await auth(client, ttl=0)
    clock.advance(120.0)
    assert (await recall(client, item("m1", force=force), headers)).status_code == 200
    clock.advance(1.0)
    answer = await recall(client, item("m2", force=force), headers)
    assert_error(answer, 403, "message_recall_error", "exceed recall time limit")


async def test_past_storage_only_force_recalls(
    client: httpx.AsyncClient, emulator: EasemobEmulator, clock: FakeClock
) -> None:
    headers = await auth(client, ttl=0)
    clock.advance(7 * DAY)
    answer = await recall(client, item("m1", force=True), headers)
    assert_error(answer, 403, "message_recall_error", "exceed recall time limit")
    clock.advance(1.0)
    answer = await recall(client, item("m1"), headers)
    assert_error(answer, 403, "message_recall_error", "not_found msg")
    assert (await recall(client, item("m1", force=True), headers)).json()["data"][
        "recalled"
    ] == "yes"
    assert emulator.state.is_recalled("m1")


async def test_recall_window_follows_the_settings(clock: FakeClock) -> None:
    emulator = seeded(EasemobEmulator(EmulatorSettings(recall_window_s=600), clock=clock))
    async with client_for(emulator.app) as client:
        headers = await auth(client, ttl=0)
        clock.advance(600)
        assert (await recall(client, item("m1"), headers)).status_code == 200


async def test_recall_service_unopened_is_403_forbidden_op(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    emulator.state.recall_service_enabled = False
    headers = await auth(client)
    for answer in (
        await recall(client, item("m1"), headers),
        await batch(client, [item("m1")], headers),
    ):
        assert_error(answer, 403, "forbidden_op", "message recall service is unopened")
        assert answer.json()["exception"] == "EasemobForbiddenOpException"


async def test_exhausted_quota_is_429_resource_limited(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    headers = await auth(client)
    emulator.state.quota_exhausted = True
    description = (
        "You have exceeded the limit of the community edition, "
        "Please upgrade to the enterprise edition"
    )
    assert_error(await recall(client, item("m1"), headers), 429, "resource_limited", description)


# batch_recall.


async def test_batch_of_exactly_30_is_accepted_in_order(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    msgs = [item(f"m{n}") for n in range(1, 31)]
    answer = await batch(client, msgs, await auth(client))
    assert answer.status_code == 200
    body = answer.json()
    assert body["path"] == "/messages/batch_recall"
    assert [entry["msg_id"] for entry in body["data"]] == [f"m{n}" for n in range(1, 31)]
    assert all(entry["recalled"] == "yes" for entry in body["data"])
    assert emulator.state.is_recalled("m30")


async def test_batch_of_31_is_rejected_whole(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    answer = await batch(client, [item(f"m{n}") for n in range(1, 32)], await auth(client))
    assert_error(answer, 400, "message_recall_error", "msgs size can not greater than 30")
    assert not emulator.state.is_recalled("m1")


async def test_a_batch_with_a_refused_message_is_refused_whole_by_default(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    """The batch page's errors are the single recall's table: one error for the call."""
    assert emulator.state.batch_refusal == "whole_call"
    answer = await batch(
        client, [item("m1"), item("nope"), item("m2", to="u9")], await auth(client)
    )
    assert_error(answer, 403, "message_recall_error", "not_found msg")
    assert not emulator.state.is_recalled("m1"), "a refused batch recalls none of its messages"
    answer = await batch(client, [item("m1"), item("m2", to="u9")], await auth(client))
    assert_error(answer, 400, "message_recall_error", "can't find msg to")


async def test_batch_answers_per_message_and_mixes_chat_types(
    client: httpx.AsyncClient, emulator: EasemobEmulator, clock: FakeClock
) -> None:
    emulator.state.batch_refusal = "per_message"
    headers = await auth(client, ttl=0)
    clock.advance(60)
    emulator.state.add_message(
        "old", sender="u1", to="u2", chat_type="chat", sent_at=clock.now - 300
    )
    msgs = [
        item("m1"),
        item("g1", to="group1", chat_type="groupchat"),
        item("nope"),
        item("old", force=True),
        item("m2", to="u9"),
    ]
    data = (await batch(client, msgs, headers)).json()["data"]
    recalled = ["yes", "yes", "not_found msg", "exceed recall time limit", "can't find msg to"]
    assert [entry["recalled"] for entry in data] == recalled
    assert data[1] == {
        "recalled": "yes",
        "chattype": "groupchat",
        "from": "admin",
        "to": "group1",
        "msg_id": "g1",
    }
    assert not emulator.state.is_recalled("m2")


async def test_batch_with_a_malformed_item_is_rejected_whole(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    no_force = {"msg_id": "m2", "to": "u2", "chat_type": "chat"}
    answer = await batch(client, [item("m1"), no_force], await auth(client))
    assert_error(answer, 400, "message_recall_error", "param force can't be empty")
    assert not emulator.state.is_recalled("m1")


@pytest.mark.parametrize("body", [{}, {"msgs": []}, {"msgs": "m1"}])
async def test_batch_needs_a_list_of_msgs(client: httpx.AsyncClient, body: Any) -> None:
    url = f"{APP}/messages/batch_recall"
    answer = await client.post(url, json=body, headers=await auth(client))
    assert_error(answer, 400, "message_recall_error", "param msgs can't be empty")


async def test_batch_recall_can_be_absent_from_the_cluster(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    emulator.state.batch_recall_enabled = False
    answer = await batch(client, [item("m1")], await auth(client))
    assert answer.status_code == 404
    assert not emulator.state.is_recalled("m1")


# Rate limits.


async def test_rate_is_per_api_in_a_sliding_second(clock: FakeClock) -> None:
    emulator = seeded(EasemobEmulator(EmulatorSettings(rate=2), clock=clock))
    async with client_for(emulator.app) as client:
        headers = await auth(client, ttl=0)
        assert (await recall(client, item("m1"), headers)).status_code == 200
        clock.advance(0.5)
        assert (await recall(client, item("m2"), headers)).status_code == 200
        answer = await recall(client, item("m3"), headers)
        assert_error(answer, 429, "reach_limit", "This request has reached api limit")
        assert "retry-after" not in answer.headers
        assert (await batch(client, [item("m4"), item("m5")], headers)).status_code == 200
        clock.advance(0.5)  # the first call left the window
        assert (await recall(client, item("m3"), headers)).status_code == 200


# user_channel.


def channel_body(**change: Any) -> bytes:
    body = {"channel": "u2", "type": "chat", "delete_roam": True} | change
    return httpx.Request("POST", "http://x", json=body).content


async def test_user_channel_deletes_the_conversation(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    answer = await delete_channel(client, "u1", channel_body(), await auth(client))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["path"], body["action"], body["entities"]) == ("/users/user_channel", "delete", [])
    assert body["data"] == {"result": "ok"}
    assert not emulator.state.conversation_exists("u1", "u2", "chat")
    assert emulator.state.roam_deleted("u1", "u2", "chat")


async def test_user_channel_of_a_missing_conversation_is_ok(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    body = channel_body(channel="group1", type="groupchat", delete_roam=False)
    answer = await delete_channel(client, "u1", body, await auth(client))
    assert answer.json()["data"] == {"result": "ok"}
    assert not emulator.state.roam_deleted("u1", "group1", "groupchat")


@pytest.mark.parametrize(
    ("body", "error", "description"),
    [
        (b"", "invalid_request_body", INVALID_BODY),
        (b"channel=u2", "invalid_request_body", INVALID_BODY),
        (b"[]", "invalid_request_body", INVALID_BODY),
        (channel_body(channel=""), "illegal_argument", "field channel cannot be null or empty"),
        (channel_body(channel=None), "illegal_argument", "field channel cannot be null or empty"),
        (channel_body(type=""), "illegal_argument", "field type cannot be null or empty"),
        (channel_body(type="chatroom"), "illegal_argument", "field type must be chat or groupchat"),
        (channel_body(delete_roam=None), "illegal_argument", "field delete_roam cannot be null"),
        (b'{"channel":"u2","type":"chat"}', "illegal_argument", "field delete_roam cannot be null"),
        (channel_body(delete_roam="yes"), "invalid_request_body", INVALID_BODY),
    ],
)
async def test_user_channel_errors(
    client: httpx.AsyncClient, body: bytes, error: str, description: str
) -> None:
    answer = await delete_channel(client, "u1", body, await auth(client))
    assert_error(answer, 400, error, description)


async def test_user_channel_of_an_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    answer = await delete_channel(client, "ghost", channel_body(), await auth(client))
    assert answer.status_code == 404
    assert answer.json()["error"] == "service_resource_not_found"


async def test_user_channel_allows_5_calls_a_minute_per_user(
    client: httpx.AsyncClient, emulator: EasemobEmulator, clock: FakeClock
) -> None:
    emulator.state.add_user("u3")
    headers = await auth(client, ttl=0)
    for _ in range(5):
        assert (await delete_channel(client, "u1", channel_body(), headers)).status_code == 200
    answer = await delete_channel(client, "u1", channel_body(), headers)
    assert_error(answer, 429, "reach_limit", "This request has reached api limit")
    assert (await delete_channel(client, "u3", channel_body(), headers)).status_code == 200
    clock.advance(59.9)
    assert (await delete_channel(client, "u1", channel_body(), headers)).status_code == 429
    clock.advance(0.1)
    assert (await delete_channel(client, "u1", channel_body(), headers)).status_code == 200


# Faults, latency and the request log.


async def test_scripted_5xx_faults_use_easemob_shapes_and_change_nothing(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    headers = await auth(client)
    emulator.faults.push("http_500")
    emulator.faults.push("http_503")
    emulator.faults.push("http_502")
    assert_error(await recall(client, item("m1"), headers), 500, "internal_error", "internal error")
    assert (await recall(client, item("m1"), headers)).json()["error"] == "service_unavailable"
    gateway = await recall(client, item("m1"), headers)
    assert (gateway.status_code, gateway.text) == (502, "Bad Gateway")
    assert not emulator.state.is_recalled("m1")
    assert (await recall(client, item("m1"), headers)).status_code == 200


async def test_throttle_fault_can_carry_retry_after(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    headers = await auth(client)
    emulator.faults.push("throttle", retry_after=7)
    answer = await recall(client, item("m1"), headers)
    assert_error(answer, 429, "reach_limit", "This request has reached api limit")
    assert answer.headers["retry-after"] == "7"


async def test_targeted_fault_waits_for_its_path(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    emulator.faults.push("http_500", count=2, only_path_contains="batch_recall")
    headers = await auth(client)
    assert (await recall(client, item("m1"), headers)).status_code == 200
    assert (await batch(client, [item("m2")], headers)).status_code == 500
    assert (await batch(client, [item("m2")], headers)).status_code == 500
    assert (await batch(client, [item("m2")], headers)).status_code == 200
    assert emulator.faults.pending == 0


async def test_drop_processes_the_request_and_gives_no_answer(
    client: httpx.AsyncClient, emulator: EasemobEmulator
) -> None:
    headers = await auth(client)
    emulator.faults.push("drop")
    with pytest.raises(ConnectionDropped):
        await recall(client, item("m1"), headers)
    assert emulator.state.is_recalled("m1")
    entry = emulator.log[-1]
    assert (entry.status, entry.fault, entry.items) == (None, "drop", ("m1",))


async def test_random_faults_follow_the_rate_and_seed(clock: FakeClock) -> None:
    statuses = []
    for _ in range(2):
        emulator = seeded(EasemobEmulator(EmulatorSettings(fault_rate=0.5, seed=3), clock=clock))
        async with client_for(emulator.app) as client:
            answers = [await client.post(f"{APP}/token", json=CREDENTIALS) for _ in range(40)]
        statuses.append([answer.status_code for answer in answers])
    assert statuses[0] == statuses[1]
    assert set(statuses[0]) == {200, 500, 503}


async def test_log_records_every_request_with_its_items(
    client: httpx.AsyncClient, emulator: EasemobEmulator, clock: FakeClock
) -> None:
    headers = await auth(client)
    await recall(client, item("nope"), headers)
    await batch(client, [item("m1"), item("m2")], headers)
    await delete_channel(client, "u1", channel_body(), headers)
    await recall(client, {"to": "u2"}, {})
    token, single, many, channel, unauthorized = emulator.log
    assert (token.path, token.status, token.items) == (f"{APP}/token", 200, ())
    assert (single.status, single.code, single.items) == (403, "message_recall_error", ("nope",))
    assert (many.status, many.code, many.items) == (200, None, ("m1", "m2"))
    assert many.body == {"msgs": [item("m1"), item("m2")]}
    assert (channel.method, channel.items) == ("DELETE", ("u1/u2",))
    assert (unauthorized.status, unauthorized.code) == (401, "unauthorized")
    assert all(entry.vendor == "easemob" and entry.time == clock.now for entry in emulator.log)


# The per-message failure body (seed 000) and Agora Chat.

AGORA_APP_ID = "970CA35de60c44645bbae8a215061b33"
AGORA_CERTIFICATE = "5CFd2fd1755d40ecb72977518be15d3b"
# Agora's published chat app token for that app, issued at 1111111 for 600 s (AgoraIO/Tools,
# DynamicKey/AgoraDynamicKey, AccessToken2 tests); and the user token of the same tests.
AGORA_APP_TOKEN = (
    "007eJxTYNDNaz3snC8huEfHWdz6s98qltq4zqy9fl99Uh0FDvy6F6DAYGlu4OxobJqSamaQbGJiZmKalJSYapFoZGhqYGa"
    "YZGzs/kWAIYKJgYGRAYRZgZgJzGdgAACt8hhr"
)
AGORA_USER_TOKEN = (
    "007eJxTYNAIsnbS3v/A5t2TC6feR15r+6cq8bqAvfaW+tk/Vzz+p6xTYLA0N3B2NDZNSTUzSDYxMTMxTUpKTLVINDI0NTA"
    "zTDI2dv8iwBDBxMDAyADCrEDMCOZzMRhZWBgZmxgamRsDAB+lHrg="
)


async def test_msgs_shape_answers_every_message_of_a_refused_batch(
    emulator: EasemobEmulator, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    emulator.state.recall_failure_shape = "msgs"
    headers = await auth(client)
    answer = await batch(client, [item("m1"), item("m2", to="u9"), item("gone")], headers)
    assert answer.status_code == 403
    assert answer.json() == {
        "msgs": [
            {"msg_id": "m1", "recalled": "yes"},
            {"msg_id": "m2", "recalled": "can't find msg to"},
            {"msg_id": "gone", "recalled": "not_found msg"},
        ]
    }
    assert emulator.state.is_recalled("m1")
    assert (await batch(client, [item("m3")], headers)).status_code == 200


async def test_msgs_shape_for_a_single_recall(
    emulator: EasemobEmulator, client: httpx.AsyncClient
) -> None:
    emulator.state.recall_failure_shape = "msgs"
    headers = await auth(client)
    answer = await recall(client, item("nope"), headers)
    assert (answer.status_code, answer.json()) == (
        403,
        {"msgs": [{"msg_id": "nope", "recalled": "not_found msg"}]},
    )
    answer = await recall(client, item("m1", to="u9"), headers)
    assert answer.status_code == 400
    assert answer.json()["msgs"][0]["recalled"] == "can't find msg to"


async def test_agora_app_tokens_are_taken_when_the_app_has_a_certificate(
    emulator: EasemobEmulator, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.now = 1111111 + 10
    emulator.state.add_message("a1", sender="u1", to="u2", chat_type="chat")
    headers = {"Authorization": f"Bearer {AGORA_APP_TOKEN}"}
    assert_error(await recall(client, item("a1"), headers), 401, "auth_bad_access_token", CORRUPT)
    emulator.state.agora_app_id = AGORA_APP_ID
    emulator.state.agora_app_certificate = AGORA_CERTIFICATE
    assert (await recall(client, item("a1"), headers)).status_code == 200
    user = {"Authorization": f"Bearer {AGORA_USER_TOKEN}"}
    assert_error(
        await recall(client, item("m1"), user),
        401,
        "auth_bad_access_token",
        "Unable to authenticate",
    )
    clock.now = 1111111 + 600
    expired = "Unable to authenticate due to expired access token"
    assert_error(await recall(client, item("m1"), headers), 401, "unauthorized", expired)


async def test_agora_certificate_must_match(
    emulator: EasemobEmulator, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.now = 1111111
    emulator.state.agora_app_id = AGORA_APP_ID
    emulator.state.agora_app_certificate = "0" * 32
    headers = {"Authorization": f"Bearer {AGORA_APP_TOKEN}"}
    assert_error(
        await recall(client, item("m1"), headers),
        401,
        "auth_bad_access_token",
        "Unable to authenticate",
    )


async def test_agora_wording(
    emulator: EasemobEmulator, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    emulator.state.wording = "agora"
    headers = await auth(client)
    wrong_to = await recall(client, item("m1", to="u9"), headers)
    assert_error(wrong_to, 400, "message_recall_error", "can't find message to")
    clock.advance(3600)
    late = await recall(client, item("m2"), headers)
    assert_error(late, 403, "message_recall_error", "exceed call time limit")
    emulator.faults.push("throttle")
    throttled = await recall(client, item("m3"), headers)
    assert_error(throttled, 429, "reach_limit", "This request has reached API limit.")
