"""The RongCloud emulator, by raw HTTP: the signature (the document's own example), Timestamp
units, recall, history clean, rate limit, faults, and the adapter against it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from itertools import count
from typing import Any

import httpx
import pytest

from batchrecall.config import LaneSettings, Secret
from batchrecall.emulators import EmulatorSettings, RongCloudEmulator
from batchrecall.models import Call, Item, LaneKey, Op, Status, Vendor
from batchrecall.vendors.rongcloud import RongCloudAdapter
from tests.emulators.support import FakeClock, client_for

pytestmark = pytest.mark.anyio

APP_KEY = "emulatorrongcloudkey"
SECRET = "emulatorrongsecret"
RECALL = "/message/recall.json"
CLEAN = "/conversation/message/history/clean.json"
SENT = 1_763_690_000_201
_nonces = count()


@pytest.fixture
def emulator(clock: FakeClock) -> RongCloudEmulator:
    emulator = RongCloudEmulator(clock=clock)
    state = emulator.state
    state.add_message("UID-1", sender="alice", conversation_type=1, target_id="bob", sent_ms=SENT)
    state.add_message("UID-2", sender="alice", conversation_type=3, target_id="g1", sent_ms=SENT)
    state.add_message(
        "UID-3", sender="bob", conversation_type=3, target_id="g1", sent_ms=SENT + 1000
    )
    state.add_message(
        "UID-U", sender="alice", conversation_type=10, target_id="ug", bus_channel="c1"
    )
    return emulator


@pytest.fixture
async def client(emulator: RongCloudEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(emulator.app) as client:
        yield client


def signed(
    clock: FakeClock, *, nonce: str | None = None, stamp: str | None = None
) -> dict[str, str]:
    nonce = f"{next(_nonces)}" if nonce is None else nonce
    stamp = str(int(clock.now)) if stamp is None else stamp
    digest = hashlib.sha1((SECRET + nonce + stamp).encode()).hexdigest()
    return {"App-Key": APP_KEY, "Nonce": nonce, "Timestamp": stamp, "Signature": digest}


def recall_form(uid: str = "UID-1", **changes: Any) -> dict[str, str]:
    form = {
        "fromUserId": "alice",
        "conversationType": "1",
        "targetId": "bob",
        "messageUID": uid,
        "sentTime": str(SENT),
    }
    form.update({name: str(value) for name, value in changes.items()})
    return {name: value for name, value in form.items() if value != "None"}


async def post(
    client: httpx.AsyncClient, path: str, form: dict[str, str], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    answer = await client.post(path, data=form, headers=headers)
    body: dict[str, Any] = answer.json()
    return answer.status_code, body


# The signature.


async def test_the_documents_signed_request_is_accepted(clock: FakeClock) -> None:
    # research §R1.1: the signature page's headers, signed with its PHP sample's secret.
    emulator = RongCloudEmulator(clock=clock, app_key="uwd1c0sxdlx2", app_secret="Y1W2MeFwwwRxa0")
    emulator.state.add_message("UID-1", sender="alice", conversation_type=1, target_id="bob")
    doc = {
        "App-Key": "uwd1c0sxdlx2",
        "Nonce": "14314",
        "Timestamp": "1408710653000",
        "Signature": "30be0bbca9c9b2e27578701e9fda2358a814c88f",
    }
    async with client_for(emulator.app) as client:
        assert await post(client, RECALL, recall_form(), doc) == (200, {"code": 200})
        altered = doc | {"Timestamp": "1408710653491"}  # the newer page's, unsigned by it
        status, body = await post(client, RECALL, recall_form(), altered)
    assert (status, body["code"]) == (401, 1004)


async def test_rc_prefixed_headers_are_accepted(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    headers = {f"RC-{name}": value for name, value in signed(clock).items()}
    assert await post(client, RECALL, recall_form(), headers) == (200, {"code": 200})
    assert emulator.state.is_recalled("UID-1")


@pytest.mark.parametrize("missing", ["App-Key", "Nonce", "Timestamp", "Signature"])
async def test_each_signature_header_is_required(
    client: httpx.AsyncClient, clock: FakeClock, missing: str
) -> None:
    headers = signed(clock)
    del headers[missing]
    status, body = await post(client, RECALL, recall_form(), headers)
    assert (status, body["code"]) == (401, 1004)
    assert missing in body["errorMessage"]


async def test_a_wrong_secret_and_a_wrong_key(client: httpx.AsyncClient, clock: FakeClock) -> None:
    headers = signed(clock)
    wrong = hashlib.sha1(("other" + headers["Nonce"] + headers["Timestamp"]).encode()).hexdigest()
    status, body = await post(client, RECALL, recall_form(), headers | {"Signature": wrong})
    assert (status, body["code"]) == (401, 1004)
    status, body = await post(client, RECALL, recall_form(), signed(clock) | {"App-Key": "x"})
    assert (status, body["code"]) == (401, 1001)


async def test_the_signature_is_compared_in_any_case(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    headers = signed(clock)
    upper = headers | {"Signature": headers["Signature"].upper()}
    assert await post(client, RECALL, recall_form(), upper) == (200, {"code": 200})


async def test_a_nonce_longer_than_18_characters_is_refused(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    status, body = await post(client, RECALL, recall_form(), signed(clock, nonce="1" * 19))
    assert (status, body["code"]) == (401, 1004)
    assert await post(client, RECALL, recall_form(), signed(clock, nonce="1" * 18)) == (
        200,
        {"code": 200},
    )


async def test_seconds_and_milliseconds_are_both_accepted(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    ms = str(int(clock.now * 1000))
    assert await post(client, RECALL, recall_form("UID-1"), signed(clock)) == (200, {"code": 200})
    assert await post(client, RECALL, recall_form("UID-2", conversationType=3, targetId="g1"),
                      signed(clock, stamp=ms)) == (200, {"code": 200})  # fmt: skip


async def test_a_server_of_one_unit_and_a_freshness_window(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    emulator.state.timestamp_units = ("ms",)
    status, body = await post(client, RECALL, recall_form(), signed(clock))
    assert (status, body["code"]) == (401, 1004)
    emulator.state.timestamp_units = ("s", "ms")
    emulator.state.timestamp_window_s = 300.0
    old = str(int(clock.now) - 301)
    status, body = await post(client, RECALL, recall_form(), signed(clock, stamp=old))
    assert (status, body["code"]) == (401, 1004)
    # No window is documented: by default any time is accepted.
    emulator.state.timestamp_window_s = None
    assert await post(client, RECALL, recall_form(), signed(clock, stamp=old)) == (
        200,
        {"code": 200},
    )


# Recall.


async def test_recall_then_again_is_not_there(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    assert await post(client, RECALL, recall_form(), signed(clock)) == (200, {"code": 200})
    assert emulator.state.is_recalled("UID-1")
    assert not emulator.state.is_deleted("UID-1")
    status, body = await post(client, RECALL, recall_form(), signed(clock))
    assert (status, body) == (200, {"code": 1015, "errorMessage": "删除的数据不存在"})
    status, body = await post(client, RECALL, recall_form("never-sent"), signed(clock))
    assert (status, body["code"]) == (200, 1015)


async def test_recall_has_no_time_limit(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    clock.advance(400 * 86400)
    assert await post(client, RECALL, recall_form(), signed(clock)) == (200, {"code": 200})


async def test_is_delete_removes_without_a_notice(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    form = recall_form(isDelete=1, isAdmin=1, extra="moderation", disablePush="true")
    assert await post(client, RECALL, form, signed(clock)) == (200, {"code": 200})
    assert emulator.state.is_deleted("UID-1")


async def test_a_message_named_in_another_conversation_is_a_bad_parameter(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    status, body = await post(client, RECALL, recall_form(fromUserId="mallory"), signed(clock))
    assert (status, body["code"]) == (400, 1002)
    assert not emulator.state.is_recalled("UID-1")


async def test_an_ultra_group_message_needs_its_channel(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    form = recall_form("UID-U", conversationType=10, targetId="ug")
    status, body = await post(client, RECALL, form, signed(clock))
    assert (status, body["code"]) == (400, 1002)
    assert await post(client, RECALL, form | {"busChannel": "c1"}, signed(clock)) == (
        200,
        {"code": 200},
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"sentTime": None}, "sentTime 参数为必传项"),
        ({"messageUID": ""}, "messageUID 参数为必传项"),
        ({"conversationType": 2}, "conversationType"),
        ({"sentTime": "yesterday"}, "sentTime"),
        ({"isDelete": 2}, "isDelete"),
        ({"disablePush": "yes"}, "disablePush"),
        ({"force": "true"}, "unknown parameter: force"),
    ],
)
async def test_bad_parameters_are_1002(
    client: httpx.AsyncClient, clock: FakeClock, changes: dict[str, Any], words: str
) -> None:
    status, body = await post(client, RECALL, recall_form(**changes), signed(clock))
    assert (status, body["code"]) == (400, 1002)
    assert words in body["errorMessage"]


async def test_a_body_that_is_not_a_form_is_no_post_data(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    answer = await client.post(RECALL, json=recall_form(), headers=signed(clock))
    assert (answer.status_code, answer.json()["code"]) == (400, 1003)


async def test_a_long_extra_is_1005(client: httpx.AsyncClient, clock: FakeClock) -> None:
    status, body = await post(client, RECALL, recall_form(extra="x" * 1025), signed(clock))
    assert (status, body["code"]) == (400, 1005)


async def test_service_not_enabled_is_430(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    emulator.state.recall_enabled = False
    status, body = await post(client, RECALL, recall_form(), signed(clock))
    assert (status, body["code"]) == (430, 1009)


# History clean.


async def test_clean_all_or_before_a_time(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    form = {"conversationType": "3", "fromUserId": "alice", "targetId": "g1"}
    before = {**form, "msgTimestamp": str(SENT + 1)}
    assert await post(client, CLEAN, before, signed(clock)) == (200, {"code": 200})
    assert emulator.state.is_cleared("UID-2")
    assert not emulator.state.is_cleared("UID-3")
    assert await post(client, CLEAN, form, signed(clock)) == (200, {"code": 200})
    assert emulator.state.is_cleared("UID-3")
    # A cleaned message is no longer there to recall.
    status, body = await post(
        client, RECALL, recall_form("UID-2", conversationType=3, targetId="g1"), signed(clock)
    )
    assert (status, body["code"]) == (200, 1015)


async def test_clean_of_a_private_chat_from_either_side(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    form = {"conversationType": "1", "fromUserId": "bob", "targetId": "alice"}
    assert await post(client, CLEAN, form, signed(clock)) == (200, {"code": 200})
    assert emulator.state.is_cleared("UID-1")


async def test_clean_of_an_unknown_conversation_is_not_there(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    form = {"conversationType": "1", "fromUserId": "zed", "targetId": "alice"}
    status, body = await post(client, CLEAN, form, signed(clock))
    assert (status, body["code"]) == (200, 1015)
    status, body = await post(client, CLEAN, form | {"conversationType": "10"}, signed(clock))
    assert (status, body["code"]) == (400, 1002)  # the clean takes 1, 3, 4, 6


# Rate limit and faults.


async def test_over_the_rate_is_429_1008_and_the_next_second_passes(clock: FakeClock) -> None:
    emulator = RongCloudEmulator(EmulatorSettings(rate=2), clock=clock)
    async with client_for(emulator.app) as client:
        answers = [
            await post(client, RECALL, recall_form(f"none-{i}"), signed(clock)) for i in range(3)
        ]
        assert [status for status, _ in answers] == [200, 200, 429]
        assert answers[2][1]["code"] == 1008
        clock.advance(1.0)
        status, _ = await post(client, RECALL, recall_form("none-3"), signed(clock))
    assert status == 200


async def test_faults_in_rongclouds_shape(
    client: httpx.AsyncClient, clock: FakeClock, emulator: RongCloudEmulator
) -> None:
    emulator.faults.push("throttle", retry_after=2)
    emulator.faults.push("http_500")
    emulator.faults.push("http_502")
    answer = await client.post(RECALL, data=recall_form(), headers=signed(clock))
    assert (answer.status_code, answer.json()["code"]) == (429, 1008)
    assert answer.headers["Retry-After"] == "2"
    answer = await client.post(RECALL, data=recall_form(), headers=signed(clock))
    assert (answer.status_code, answer.json()["code"]) == (500, 1000)
    answer = await client.post(RECALL, data=recall_form(), headers=signed(clock))
    assert (answer.status_code, answer.text) == (502, "Bad Gateway")
    assert not emulator.state.is_recalled("UID-1")  # nothing was processed
    entries = emulator.log
    assert [e.fault for e in entries] == ["throttle", "http_500", "http_502"]
    assert entries[0].items == ("UID-1",)


# The adapter against the emulator.


def _item(op: Op, **params: Any) -> Item:
    return Item(
        job="j",
        line=1,
        index=0,
        ref="",
        vendor=Vendor.RONGCLOUD,
        app="default",
        op=op,
        target="t",
        ids=("t",),
        params=params,
    )


@pytest.mark.parametrize("unit", ["s", "ms"])
async def test_the_adapter_is_accepted_in_either_unit(
    emulator: RongCloudEmulator, clock: FakeClock, unit: str
) -> None:
    settings = LaneSettings(
        lane=LaneKey(vendor=Vendor.RONGCLOUD, app="default"),
        base_url="http://emulator",
        rate=50.0,
        credentials={"app_key": APP_KEY},
        secrets={"app_secret": Secret(SECRET)},
        extras={"timestamp_unit": unit},
    )
    emulator.state.timestamp_units = (unit,)
    recall = _item(
        Op.RECALL,
        fromUserId="alice",
        conversationType=1,
        targetId="bob",
        messageUID="UID-1",
        sentTime=SENT,
    )
    clean = _item(Op.CLEAR_HISTORY, conversationType=3, fromUserId="alice", targetId="g1")
    async with client_for(emulator.app) as client:
        adapter = RongCloudAdapter(settings, client, wall_clock=clock)
        outcomes = []
        for op, item in ((Op.RECALL, recall), (Op.RECALL, recall), (Op.CLEAR_HISTORY, clean)):
            call = Call(call_id="c", lane=settings.lane, op=op, items=(item,))
            outcomes += await adapter.send(call)
    assert [o.status for o in outcomes] == [Status.OK, Status.NOT_FOUND, Status.OK]
    assert emulator.state.is_recalled("UID-1")
    assert emulator.state.is_cleared("UID-3")
