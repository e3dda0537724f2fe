"""The GoEasy emulator, by raw HTTP: appkey, conversations, the 20 limit, whole-call answers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from batchrecall.emulators import ConnectionDropped, EmulatorSettings, GoEasyEmulator
from tests.emulators.support import START, FakeClock, client_for

pytestmark = pytest.mark.anyio

URL = "/v2/im/history/recall"
KEY = "BC-emulator-common-key"
T0 = int(START * 1000) - 60_000  # a minute before the clock's start
PRIVATE = [T0 + n for n in range(30)]
GROUP = [T0 + 100 + n for n in range(5)]


@pytest.fixture
def emulator(clock: FakeClock) -> GoEasyEmulator:
    return seeded(GoEasyEmulator(clock=clock))


@pytest.fixture
async def client(emulator: GoEasyEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(emulator.app) as client:
        yield client


def seeded(emulator: GoEasyEmulator) -> GoEasyEmulator:
    for timestamp in PRIVATE:
        emulator.state.add_message(timestamp, user_a="user001", user_b="user002")
    for timestamp in GROUP:
        emulator.state.add_message(timestamp, group_id="group001")
    return emulator


def private(timestamps: list[Any], **change: Any) -> dict[str, Any]:
    """A private-chat recall of `timestamps`; a None in `change` removes that field."""
    body = {"appkey": KEY, "userAId": "user001", "userBId": "user002", "messages": timestamps}
    return {key: value for key, value in (body | change).items() if value is not None}


async def post(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post(URL, json=body)


def assert_answer(answer: httpx.Response, code: int, content: str) -> None:
    assert answer.status_code == code, answer.text
    assert answer.json() == {"code": code, "content": content}


async def test_private_recall_answers_ok_and_recalls(
    client: httpx.AsyncClient, emulator: GoEasyEmulator
) -> None:
    recaller = {"id": "user001", "data": {"avatar": "/a.png", "name": "Wallace"}}
    assert_answer(await post(client, private(PRIVATE[:3], recaller=recaller)), 200, "OK")
    state = emulator.state
    assert all(state.is_recalled(t, user_a="user001", user_b="user002") for t in PRIVATE[:3])
    assert state.message_exists(PRIVATE[3], user_a="user002", user_b="user001")


async def test_private_pair_is_unordered(
    client: httpx.AsyncClient, emulator: GoEasyEmulator
) -> None:
    body = private([PRIVATE[0]], userAId="user002", userBId="user001")
    assert_answer(await post(client, body), 200, "OK")
    assert emulator.state.is_recalled(PRIVATE[0], user_a="user001", user_b="user002")


async def test_group_recall(client: httpx.AsyncClient, emulator: GoEasyEmulator) -> None:
    body = {"appkey": KEY, "groupId": "group001", "messages": GROUP}
    assert_answer(await post(client, body), 200, "OK")
    assert emulator.state.is_recalled(GROUP[4], group_id="group001")


@pytest.mark.parametrize("appkey", [None, "", "BC-wrong", "BS-emulator-client-key", 42])
async def test_wrong_appkey_is_401_unauthorized(
    client: httpx.AsyncClient, emulator: GoEasyEmulator, appkey: Any
) -> None:
    answer = await post(client, private([PRIVATE[0]], appkey=appkey))
    assert_answer(answer, 401, "Unauthorized")
    assert not emulator.state.is_recalled(PRIVATE[0], user_a="user001", user_b="user002")


async def test_rest_key_is_accepted(client: httpx.AsyncClient) -> None:
    answer = await post(client, private([PRIVATE[0]], appkey="BR-emulator-rest-key"))
    assert_answer(answer, 200, "OK")


@pytest.mark.parametrize(
    ("change", "content"),
    [
        ({"groupId": "group001"}, "groupId must not be combined with userAId/userBId"),
        ({"userAId": None, "userBId": None}, "userAId and userBId, or groupId, is required"),
        ({"userBId": None}, "userAId and userBId must be given as a pair"),
        ({"userAId": ""}, "userAId must be a non-empty string"),
        ({"groupId": 7, "userAId": None, "userBId": None}, "groupId must be a non-empty string"),
        ({"messages": None}, "messages must be a non-empty list of message timestamps"),
        ({"messages": []}, "messages must be a non-empty list of message timestamps"),
        ({"messages": T0}, "messages must be a non-empty list of message timestamps"),
        ({"messages": [str(T0)]}, "messages must hold message timestamps (integer milliseconds)"),
        ({"messages": [T0 + 0.5]}, "messages must hold message timestamps (integer milliseconds)"),
        ({"messages": [True]}, "messages must hold message timestamps (integer milliseconds)"),
        ({"messages": [T0, T0]}, f"duplicate timestamp in messages: {T0}"),
        ({"recaller": "user001"}, "recaller must be an object with a string id"),
        ({"recaller": {"id": 1}}, "recaller must be an object with a string id"),
    ],
)
async def test_invalid_calls_are_400(
    client: httpx.AsyncClient, emulator: GoEasyEmulator, change: dict[str, Any], content: str
) -> None:
    assert_answer(await post(client, private([PRIVATE[0]], **change)), 400, content)
    assert not emulator.state.is_recalled(PRIVATE[0], user_a="user001", user_b="user002")


async def test_body_must_be_a_json_object(client: httpx.AsyncClient) -> None:
    assert_answer(
        await client.post(URL, content=b"appkey=x"), 400, "request body must be a JSON object"
    )
    assert_answer(await post(client, [KEY]), 400, "request body must be a JSON object")


async def test_exactly_20_timestamps_are_accepted(client: httpx.AsyncClient) -> None:
    assert_answer(await post(client, private(PRIVATE[:20])), 200, "OK")


async def test_21_timestamps_are_rejected_and_nothing_is_recalled(
    client: httpx.AsyncClient, emulator: GoEasyEmulator
) -> None:
    assert_answer(await post(client, private(PRIVATE[:21])), 400, "messages size can not exceed 20")
    assert not emulator.state.is_recalled(PRIVATE[0], user_a="user001", user_b="user002")


async def test_an_unknown_timestamp_fails_the_whole_call(
    client: httpx.AsyncClient, emulator: GoEasyEmulator
) -> None:
    answer = await post(client, private([PRIVATE[0], T0 - 1]))
    assert_answer(answer, 400, f"message not found: {T0 - 1}")
    assert not emulator.state.is_recalled(PRIVATE[0], user_a="user001", user_b="user002")


async def test_recalling_again_is_not_found(client: httpx.AsyncClient) -> None:
    assert_answer(await post(client, private([PRIVATE[0]])), 200, "OK")
    assert_answer(
        await post(client, private([PRIVATE[0]])), 400, f"message not found: {PRIVATE[0]}"
    )


async def test_a_timestamp_of_another_conversation_is_not_found(client: httpx.AsyncClient) -> None:
    answer = await post(client, private([GROUP[0]]))
    assert_answer(answer, 400, f"message not found: {GROUP[0]}")


async def test_recall_window_is_four_hours(
    client: httpx.AsyncClient, emulator: GoEasyEmulator, clock: FakeClock
) -> None:
    clock.advance(4 * 3600 - 60)  # PRIVATE[0] is now exactly 4 h old
    assert_answer(await post(client, private([PRIVATE[0]])), 200, "OK")
    clock.advance(0.002)  # PRIVATE[1], 1 ms younger, is now 1 ms past the window
    answer = await post(client, private([PRIVATE[1], PRIVATE[2]]))
    assert_answer(answer, 400, f"recall time limit exceeded: {PRIVATE[1]}")
    assert not emulator.state.is_recalled(PRIVATE[2], user_a="user001", user_b="user002")


async def test_seeding_can_date_an_old_timestamp_now(
    client: httpx.AsyncClient, emulator: GoEasyEmulator, clock: FakeClock
) -> None:
    emulator.state.add_message(1581111111111, group_id="g", sent_at=clock.now)
    body = {"appkey": KEY, "groupId": "g", "messages": [1581111111111]}
    assert_answer(await post(client, body), 200, "OK")


async def test_recall_window_follows_the_settings(clock: FakeClock) -> None:
    emulator = seeded(GoEasyEmulator(EmulatorSettings(goeasy_recall_window_s=30), clock=clock))
    async with client_for(emulator.app) as client:
        answer = await post(client, private([PRIVATE[0]]))
    assert_answer(answer, 400, f"recall time limit exceeded: {PRIVATE[0]}")


async def test_rate_limit_is_429(clock: FakeClock) -> None:
    emulator = seeded(GoEasyEmulator(EmulatorSettings(rate=1), clock=clock))
    async with client_for(emulator.app) as client:
        assert_answer(await post(client, private([PRIVATE[0]])), 200, "OK")
        assert_answer(await post(client, private([PRIVATE[1]])), 429, "Too many requests")
        clock.advance(1.0)
        assert_answer(await post(client, private([PRIVATE[1]])), 200, "OK")


async def test_faults_use_goeasy_shapes(
    client: httpx.AsyncClient, emulator: GoEasyEmulator
) -> None:
    emulator.faults.push("http_500")
    emulator.faults.push("throttle", retry_after=2)
    assert_answer(await post(client, private([PRIVATE[0]])), 500, "Internal Server Error")
    throttled = await post(client, private([PRIVATE[0]]))
    assert_answer(throttled, 429, "Too many requests")
    assert throttled.headers["retry-after"] == "2"
    assert not emulator.state.is_recalled(PRIVATE[0], user_a="user001", user_b="user002")


async def test_drop_recalls_then_gives_no_answer(
    client: httpx.AsyncClient, emulator: GoEasyEmulator
) -> None:
    emulator.faults.push("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await post(client, private(PRIVATE[:2]))
    assert emulator.state.is_recalled(PRIVATE[1], user_a="user001", user_b="user002")
    assert_answer(await post(client, private(PRIVATE[:2])), 400, f"message not found: {PRIVATE[0]}")
    assert issubclass(ConnectionDropped, httpx.TransportError)


async def test_log_holds_the_timestamps(
    client: httpx.AsyncClient, emulator: GoEasyEmulator
) -> None:
    await post(client, private(PRIVATE[:2]))
    await post(client, private(PRIVATE[:2], appkey="bad"))
    ok, unauthorized = emulator.log
    assert ok.items == unauthorized.items == (str(PRIVATE[0]), str(PRIVATE[1]))
    assert (ok.status, ok.code, unauthorized.status, unauthorized.code) == (200, 200, 401, 401)
    assert ok.body == private(PRIVATE[:2])


async def test_latency_delays_every_answer(clock: FakeClock) -> None:
    emulator = GoEasyEmulator(EmulatorSettings(latency_ms=40), clock=clock)
    async with client_for(emulator.app) as client:
        started = time.perf_counter()
        assert_answer(await post(client, {"appkey": "wrong"}), 401, "Unauthorized")
        assert time.perf_counter() - started >= 0.04
