"""The Easemob export and the GoEasy history of the emulators, by raw HTTP."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from batchrecall.emulators import EasemobEmulator, GoEasyEmulator
from tests.emulators.support import START, FakeClock, client_for
from tests.emulators.test_easemob import APP, auth
from tests.emulators.test_easemob import seeded as easemob_seeded
from tests.emulators.test_goeasy import GROUP, KEY, PRIVATE
from tests.emulators.test_goeasy import seeded as goeasy_seeded

pytestmark = pytest.mark.anyio

# START (1_700_000_000) is 2023-11-14T22:13:20Z: 2023-11-15 06:13 in Beijing.
HOUR = "2023111506"


@pytest.fixture
async def easemob(clock: FakeClock) -> AsyncIterator[tuple[EasemobEmulator, httpx.AsyncClient]]:
    emulator = easemob_seeded(EasemobEmulator(clock=clock))
    async with client_for(emulator.app) as client:
        yield emulator, client


@pytest.fixture
async def goeasy(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(goeasy_seeded(GoEasyEmulator(clock=clock)).app) as client:
        yield client


async def test_export_link_and_file(easemob: tuple[EasemobEmulator, httpx.AsyncClient]) -> None:
    emulator, client = easemob
    headers = await auth(client)
    answer = await client.get(f"{APP}/chatmessages/{HOUR}", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {"action", "application", "uri", "data", "timestamp", "organization"} <= set(body)
    url = body["data"][0]["url"]
    assert "Expires=" in url
    assert "Signature=" in url
    file = await client.get(url)  # no token: the link is signed for itself
    records = [orjson.loads(line) for line in gzip.decompress(file.content).splitlines()]
    assert len(records) == 41
    assert records[0]["payload"]["from"] == "u1"
    assert records[0]["timestamp"] == int(START * 1000)
    # A recall does not change the export.
    emulator.state.recall("m1", to="u2", chat_type="chat", force=True)
    again = await client.get(url)
    assert again.content == file.content
    tampered = await client.get(url.replace("Signature=", "Signature=0"))
    assert tampered.status_code == 403


async def test_export_refusals(
    easemob: tuple[EasemobEmulator, httpx.AsyncClient], clock: FakeClock
) -> None:
    emulator, client = easemob
    headers = await auth(client)
    empty = await client.get(f"{APP}/chatmessages/2023111505", headers=headers)
    assert (empty.status_code, empty.json()["error"]) == (404, "storage_object_not_found")
    emulator.state.export.delay_s = 3600.0
    not_yet = await client.get(f"{APP}/chatmessages/{HOUR}", headers=headers)
    assert not_yet.status_code == 400
    assert "expired or unstored" in not_yet.json()["error_description"]
    assert (await client.get(f"{APP}/chatmessages/{HOUR}")).status_code == 401
    emulator.state.export.delay_s = None
    statuses = [
        (await client.get(f"{APP}/chatmessages/{HOUR}", headers=headers)).status_code
        for _ in range(11)
    ]
    assert statuses.count(429) >= 1  # 10 a minute per app key
    clock.advance(4 * 86400)
    old = await client.get(f"{APP}/chatmessages/{HOUR}", headers=await auth(client))
    assert old.status_code == 400  # past the 3 days kept


async def test_goeasy_history_pages_back(goeasy: httpx.AsyncClient) -> None:
    params: dict[str, str | int] = {
        "appkey": KEY,
        "userAId": "user002",
        "userBId": "user001",
        "limit": 30,
    }
    first = (await goeasy.get("/v2/im/history", params=params)).json()
    assert first["code"] == 200
    stamps = [entry["timestamp"] for entry in first["content"]]
    assert stamps == sorted(PRIVATE, reverse=True)[:30]
    assert first["content"][0]["senderId"] == "user001"
    older = await goeasy.get("/v2/im/history", params={**params, "lasttimestamp": stamps[-1]})
    assert older.json()["content"] == []
    group = await goeasy.get("/v2/im/history", params={"appkey": KEY, "groupId": "group001"})
    assert [e["timestamp"] for e in group.json()["content"]] == sorted(GROUP, reverse=True)
    refused = await goeasy.get("/v2/im/history", params={**params, "appkey": "wrong"})
    assert refused.json() == {"code": 401, "content": "Unauthorized"}
    too_many = await goeasy.get("/v2/im/history", params={**params, "limit": 31})
    assert too_many.json()["code"] == 400
