"""The Yunxin emulator's history endpoints by raw HTTP: search by sender, a conversation's
messages (v2.1 and v2), strict parameters, paging; recalled messages left out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from batchrecall.emulators import YunxinEmulator
from tests.emulators.support import FakeClock, client_for
from tests.emulators.test_yunxin import P2P, TEAM, remove, seeded, sign

pytestmark = pytest.mark.anyio


@pytest.fixture
def emulator(clock: FakeClock) -> YunxinEmulator:
    return seeded(YunxinEmulator(clock=clock))


@pytest.fixture
async def client(emulator: YunxinEmulator, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(emulator.app) as client:
        client.event_hooks["request"] = [lambda request: sign(request, clock)]
        yield client


SEARCH = "/im/v2.1/messages/actions/search_messages"


def _window(clock: FakeClock) -> dict[str, int]:
    return {"start_time": int((clock.now - 3600) * 1000), "time_period": 7_200_000}


async def test_search_finds_the_senders_messages_newest_first(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    params: dict[str, str | int] = {
        "operator_id": "alice",
        "sender_account_ids": "alice",
        "limit": 2,
        **_window(clock),
    }
    first = (await client.get(SEARCH, params=params)).json()
    assert first["code"] == 200
    assert first["data"]["count"] == 9  # alice's 3 in each of P2P, team and super team
    assert first["data"]["has_more"] is True
    item = first["data"]["items"][0]
    assert {"message_server_id", "sender_id", "conversation_type", "create_time"} <= set(item)
    assert item["sender_id"] == "alice"
    pages = [first]
    while pages[-1]["data"]["has_more"]:
        token = pages[-1]["data"]["next_token"]
        pages.append((await client.get(SEARCH, params={**params, "page_token": token})).json())
    times = [i["create_time"] for p in pages for i in p["data"]["items"]]
    assert len(times) == 9
    assert times == sorted(times, reverse=True)


async def test_search_refusals(client: httpx.AsyncClient, clock: FakeClock) -> None:
    base: dict[str, str | int] = {"operator_id": "alice", "limit": 10, **_window(clock)}
    six = {**base, "sender_account_ids": "a,b,c,d,e,f"}
    assert (await client.get(SEARCH, params=six)).json()["code"] == 414
    unknown = {**base, "sender_account_ids": "alice", "x": "1"}
    assert "unknown parameter" in (await client.get(SEARCH, params=unknown)).json()["msg"]
    nobody = {**base, "operator_id": "nobody", "sender_account_ids": "nobody"}
    assert (await client.get(SEARCH, params=nobody)).json()["code"] == 404


async def test_history_leaves_recalled_messages_out(
    emulator: YunxinEmulator, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    path = "/im/v2.1/conversations/bob%7C1%7Calice/messages"  # bob's view of alice|1|bob
    window: dict[str, str | int] = {
        "begin_time": int((clock.now - 60) * 1000),
        "end_time": int(clock.now * 1000) + 1,
    }
    before = (await client.get(path, params={**window, "limit": 100})).json()
    assert [i["message_server_id"] for i in before["data"]["items"]] == [1001, 1002, 1003]
    assert (await remove(client, P2P, 1002, type=2))["code"] == 200
    after = (await client.get(path, params={**window, "limit": 100})).json()
    assert [i["message_server_id"] for i in after["data"]["items"]] == [1001, 1003]
    team = (await client.get("/im/v2/conversations/x%7C2%7Cteam1/messages",
                             params={**window, "limit": 100})).json()  # fmt: skip
    assert [i["team_id"] for i in team["data"]["items"]] == ["team1"] * 3
    assert TEAM.endswith("team1")
    emulator.state.history_v21 = False
    gone = await client.get(path, params={**window, "limit": 100})
    assert gone.status_code == 404
