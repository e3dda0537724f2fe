"""The Tencent Cloud IM emulator, by raw HTTP: UserSig checks, the four APIs, limits, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from batchrecall.emulators import EmulatorSettings, TencentEmulator
from batchrecall.emulators.server import running_server
from batchrecall.emulators.tencent_usersig import SigCheck, check_usersig, decode_usersig
from batchrecall.vendors.tencent_usersig import build_usersig
from tests.emulators.support import FakeClock, client_for

pytestmark = pytest.mark.anyio

SDKAPPID = 1400000000
ADMIN = "administrator"
KEY = "emulator-test-key"
DAY = 86400.0
C2C = "/v4/openim/admin_msgwithdraw"
GROUP = "/v4/group_open_http_svc/group_msg_recall"
RAMBLE = "/v4/openim/delete_c2c_msg_ramble"
CONTACT = "/v4/recentcontact/delete"

# research/vendors-tencent-rongcloud.md §T2.4 [CALC]: the vendor's Python reference, run with
# the SDKs' demo inputs and time.time frozen at 1700000000.
VECTOR_KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
VECTOR_USERSIG = (
    "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpYJkTE1NjR"
    "DiJZm5YFFzNPXFmekgG3zKHM1T9D3LzdODi-OKs8vCqpxcAvydnV2SSv2cy03cPcpDnA2SMgu0nUxslWoBHdYzUg__"
)


@pytest.fixture
def emulator(clock: FakeClock) -> TencentEmulator:
    emulator = TencentEmulator(clock=clock, sdkappid=SDKAPPID, identifier=ADMIN, secret_key=KEY)
    state = emulator.state
    for n in range(1, 4):
        state.add_c2c_message(f"{n}_833502_1572869830", sender="vinson", receiver="dramon")
        state.add_group_message("@TGS#2J4SZEAEL", 100 + n)
    return emulator


@pytest.fixture
async def client(emulator: TencentEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(emulator.app) as client:
        yield client


def usersig(
    clock: FakeClock, *, identifier: str = ADMIN, key: str = KEY, app: int = SDKAPPID
) -> str:
    return build_usersig(
        sdkappid=app,
        identifier=identifier,
        secret_key=key,
        issued_at=int(clock.now),
        expire_s=86400,
    )


def query(clock: FakeClock, **changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "sdkappid": SDKAPPID,
        "identifier": ADMIN,
        "usersig": usersig(clock),
        "random": 99999999,
        "contenttype": "json",
    }
    params.update(changes)
    return {name: value for name, value in params.items() if value is not None}


async def post(
    client: httpx.AsyncClient, clock: FakeClock, path: str, body: Any, **changes: Any
) -> dict[str, Any]:
    response = await client.post(path, params=query(clock, **changes), json=body)
    assert response.status_code == 200  # every API outcome is HTTP 200 (§T1.3)
    answer: dict[str, Any] = response.json()
    return answer


def c2c(n: int = 1) -> dict[str, str]:
    return {"From_Account": "vinson", "To_Account": "dramon", "MsgKey": f"{n}_833502_1572869830"}


def group(*seqs: int) -> dict[str, Any]:
    return {"GroupId": "@TGS#2J4SZEAEL", "MsgSeqList": [{"MsgSeq": s} for s in seqs]}


# UserSig verification, as the Go reference does it.


def test_the_known_answer_usersig_verifies_at_its_issue_time() -> None:
    assert (
        check_usersig(
            VECTOR_USERSIG,
            sdkappid=1400000000,
            identifier="xiaojun",
            secret_key=VECTOR_KEY,
            now=1700000000,
        )
        is SigCheck.OK
    )
    document = decode_usersig(VECTOR_USERSIG)
    assert document == {
        "TLS.ver": "2.0",
        "TLS.identifier": "xiaojun",
        "TLS.sdkappid": 1400000000,
        "TLS.expire": 15552000,
        "TLS.time": 1700000000,
        "TLS.sig": "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4=",
    }


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({"now": 1700000000 + 15552000 + 1}, SigCheck.EXPIRED),
        ({"secret_key": VECTOR_KEY[:-1] + "f"}, SigCheck.SIG_MISMATCH),
        ({"identifier": "xiaojun2"}, SigCheck.IDENTIFIER_MISMATCH),
        ({"sdkappid": 1400000001}, SigCheck.SDKAPPID_MISMATCH),
    ],
)
def test_the_known_answer_usersig_is_refused_for_another_time_key_or_identity(
    changes: dict[str, Any], verdict: SigCheck
) -> None:
    given: dict[str, Any] = {
        "sdkappid": 1400000000,
        "identifier": "xiaojun",
        "secret_key": VECTOR_KEY,
        "now": 1700000000,
    }
    assert check_usersig(VECTOR_USERSIG, **{**given, **changes}) is verdict


def test_the_last_second_of_a_usersig_still_passes() -> None:
    # The Go reference: expired when now > TLS.time + TLS.expire.
    check = check_usersig(
        VECTOR_USERSIG,
        sdkappid=1400000000,
        identifier="xiaojun",
        secret_key=VECTOR_KEY,
        now=1700000000 + 15552000,
    )
    assert check is SigCheck.OK


@pytest.mark.parametrize("garbage", ["", "not base64!", "eJyrVgrx", "aGVsbG8_"])
def test_an_undecodable_usersig_is_70003(garbage: str) -> None:
    check = check_usersig(garbage, sdkappid=1, identifier="a", secret_key="k", now=0)
    assert check is SigCheck.UNDECODABLE


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"usersig": "garbage"}, 70003),
        ({"identifier": "someone"}, 70013),
        ({"sdkappid": SDKAPPID + 1}, 70020),
        ({"sdkappid": None}, 60012),
        ({"contenttype": "xml"}, 60002),
        ({"contenttype": None}, 60002),
        ({"random": 4294967296}, 60002),
        ({"random": None}, 60002),
    ],
)
async def test_requests_without_a_valid_identity_are_refused_with_the_documented_codes(
    client: httpx.AsyncClient, clock: FakeClock, changes: dict[str, Any], code: int
) -> None:
    answer = await post(client, clock, C2C, c2c(), **changes)
    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", code)


async def test_a_usersig_signed_with_another_key_or_for_another_app_is_refused(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    wrong_key = await post(client, clock, C2C, c2c(), usersig=usersig(clock, key="other"))
    other_app = await post(client, clock, C2C, c2c(), usersig=usersig(clock, app=SDKAPPID + 1))
    assert (wrong_key["ErrorCode"], other_app["ErrorCode"]) == (70009, 70014)


async def test_an_expired_usersig_is_70001_and_a_new_one_passes(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    old = usersig(clock)
    clock.advance(DAY + 1)  # its lifetime is one day
    expired = await post(client, clock, C2C, c2c(1), usersig=old)
    fresh = await post(client, clock, C2C, c2c(1))
    assert (expired["ErrorCode"], fresh["ErrorCode"]) == (70001, 0)


async def test_a_valid_usersig_of_an_account_that_is_no_admin_is_refused(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    answer = await post(
        client, clock, C2C, c2c(), identifier="vinson", usersig=usersig(clock, identifier="vinson")
    )
    assert answer["ErrorCode"] == 60010


# The APIs.


async def test_c2c_recall_then_again_is_already_recalled(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    first = await post(client, clock, C2C, c2c(1))
    second = await post(client, clock, C2C, c2c(1))
    unknown = await post(client, clock, C2C, c2c(9))
    assert first == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
    assert (second["ErrorCode"], unknown["ErrorCode"]) == (20023, 20022)
    assert emulator.state.is_recalled("1_833502_1572869830")


async def test_c2c_recall_names_the_conversation_of_the_message(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    swapped = {**c2c(1), "From_Account": "dramon", "To_Account": "vinson"}
    assert (await post(client, clock, C2C, swapped))["ErrorCode"] == 20022
    assert not emulator.state.is_recalled("1_833502_1572869830")


async def test_c2c_recall_has_no_time_limit_but_the_roaming_period(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.advance(6 * DAY)  # long past any client recall window of 2 minutes
    assert (await post(client, clock, C2C, c2c(1)))["ErrorCode"] == 0
    clock.advance(1.5 * DAY)  # past the 7 days of roaming storage
    assert (await post(client, clock, C2C, c2c(2)))["ErrorCode"] == 20022


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"To_Account": "dramon", "MsgKey": "1_833502_1572869830"}, 90008),
        ({"From_Account": "vinson", "MsgKey": "1_833502_1572869830"}, 90003),
        ({"From_Account": "vinson", "To_Account": "dramon"}, 90054),
        ({"From_Account": 7, "To_Account": "dramon", "MsgKey": "k"}, 60015),
        ({**c2c(1), "Extra": 1}, 90001),
    ],
)
async def test_c2c_recall_checks_its_fields(
    client: httpx.AsyncClient, clock: FakeClock, body: dict[str, Any], code: int
) -> None:
    assert (await post(client, clock, C2C, body))["ErrorCode"] == code


async def test_an_empty_body_is_refused_as_the_page_shows(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    response = await client.post(C2C, params=query(clock), content=b"")
    assert response.json() == {
        "ActionStatus": "FAIL",
        "ErrorInfo": "Fail to Parse json data of body, Please check it",
        "ErrorCode": 90001,
    }


async def test_group_recall_answers_a_retcode_per_seq(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    answer = await post(client, clock, GROUP, {**group(100, 101), "Reason": "撤回原因"})
    again = await post(client, clock, GROUP, group(101))
    assert answer == {
        "ActionStatus": "OK",
        "ErrorInfo": "",
        "ErrorCode": 0,
        "RecallRetList": [{"MsgSeq": 100, "RetCode": 10030}, {"MsgSeq": 101, "RetCode": 0}],
    }
    assert again["RecallRetList"] == [{"MsgSeq": 101, "RetCode": 10030}]
    assert emulator.state.is_seq_recalled("@TGS#2J4SZEAEL", 101)


async def test_group_recall_takes_at_most_ten_seqs(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    for seq in range(200, 211):
        emulator.state.add_group_message("@TGS#2J4SZEAEL", seq)
    ten = await post(client, clock, GROUP, group(*range(200, 210)))
    eleven = await post(client, clock, GROUP, group(*range(200, 211)))
    assert [r["RetCode"] for r in ten["RecallRetList"]] == [0] * 10
    assert (eleven["ErrorCode"], eleven["ActionStatus"]) == (10004, "FAIL")
    assert not emulator.state.is_seq_recalled("@TGS#2J4SZEAEL", 210)


async def test_group_recall_of_an_unknown_group_is_10010(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    answer = await post(
        client, clock, GROUP, {"GroupId": "@TGS#none", "MsgSeqList": [{"MsgSeq": 1}]}
    )
    assert answer["ErrorCode"] == 10010


async def test_av_chatroom_messages_are_recalled_within_an_hour_only(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    emulator.state.add_group("@TGS#aLIVE", "AVChatRoom")
    emulator.state.add_group_message("@TGS#aLIVE", 1, sent_at=clock.now - 3599)
    emulator.state.add_group_message("@TGS#aLIVE", 2, sent_at=clock.now - 3601)
    body = {"GroupId": "@TGS#aLIVE", "MsgSeqList": [{"MsgSeq": 1}, {"MsgSeq": 2}]}
    answer = await post(client, clock, GROUP, body)
    assert answer["RecallRetList"] == [
        {"MsgSeq": 1, "RetCode": 0},
        {"MsgSeq": 2, "RetCode": 10031},
    ]


async def test_one_side_delete_takes_at_most_thirty_keys_and_all_or_none(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    keys = [f"k{n}" for n in range(31)]
    for key in keys:
        emulator.state.add_c2c_message(key, sender="user0", receiver="user1")
    body = {"Operator_Account": "user0", "Peer_Account": "user1"}
    over = await post(client, clock, RAMBLE, {**body, "MsgKeyList": keys})
    partly_unknown = await post(client, clock, RAMBLE, {**body, "MsgKeyList": ["k0", "nope"]})
    assert (over["ErrorCode"], partly_unknown["ErrorCode"]) == (90001, 20022)
    assert emulator.state.deleted_for("k0") == frozenset()
    thirty = await post(client, clock, RAMBLE, {**body, "MsgKeyList": keys[:30]})
    assert thirty == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
    assert emulator.state.deleted_for("k0") == {"user0"}
    assert emulator.state.deleted_for("k30") == frozenset()
    # Either side of the pair may delete its own copy; the other's stays.
    peer_side = {"Operator_Account": "user1", "Peer_Account": "user0", "MsgKeyList": ["k0"]}
    assert (await post(client, clock, RAMBLE, peer_side))["ErrorCode"] == 0
    assert emulator.state.deleted_for("k0") == {"user0", "user1"}


async def test_conversation_delete_takes_to_account_or_togroupid(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    emulator.state.add_conversation("id1", 2, "id2")
    c2c_body = {"From_Account": "vinson", "Type": 1, "To_Account": "dramon", "ClearRamble": 1}
    group_body = {"From_Account": "id1", "Type": 2, "ToGroupid": "id2", "ClearRamble": 0}
    assert await post(client, clock, CONTACT, c2c_body) == {
        "ActionStatus": "OK",
        "ErrorInfo": "",
        "ErrorCode": 0,
        "ErrorDisplay": "",
    }
    assert (await post(client, clock, CONTACT, group_body))["ErrorCode"] == 0
    assert not emulator.state.conversation_exists("vinson", 1, "dramon")
    assert not emulator.state.conversation_exists("id1", 2, "id2")
    assert emulator.state.deleted_for("1_833502_1572869830") == {"vinson"}  # ClearRamble 1
    wrong_spelling = {"From_Account": "id1", "Type": 2, "ToGroupId": "id2"}
    assert (await post(client, clock, CONTACT, wrong_spelling))["ErrorCode"] == 50002
    stranger = {"From_Account": "nobody", "Type": 1, "To_Account": "dramon"}
    assert (await post(client, clock, CONTACT, stranger))["ErrorCode"] == 50001


async def test_each_api_has_its_own_rate_and_answers_60007_over_it(clock: FakeClock) -> None:
    emulator = TencentEmulator(
        EmulatorSettings(rate=2), clock=clock, identifier=ADMIN, secret_key=KEY
    )
    async with client_for(emulator.app) as client:
        codes = [(await post(client, clock, C2C, c2c()))["ErrorCode"] for _ in range(3)]
        other_api = await post(client, clock, GROUP, group(1))
        clock.advance(1.0)
        later = await post(client, clock, C2C, c2c())
    assert codes == [20022, 20022, 60007]
    assert other_api["ErrorCode"] == 10010
    assert later["ErrorCode"] == 20022


async def test_the_documented_rate_applies_when_none_is_set(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    codes = [(await post(client, clock, C2C, c2c(9)))["ErrorCode"] for _ in range(201)]
    assert codes.count(60007) == 1  # 200 a second (§T3.1)


async def test_faults_answer_as_tencent_would(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    emulator.faults.push("code_500")
    emulator.faults.push("throttle", retry_after=3)
    emulator.faults.push("http_502")
    internal = await post(client, clock, C2C, c2c(1))
    throttled = await client.post(C2C, params=query(clock), json=c2c(1))
    gateway = await client.post(C2C, params=query(clock), json=c2c(1))
    assert internal["ErrorCode"] == 91000
    assert throttled.json()["ErrorCode"] == 60007
    assert throttled.headers["Retry-After"] == "3"
    assert (gateway.status_code, gateway.text) == (502, "Bad Gateway")
    assert not emulator.state.is_recalled("1_833502_1572869830")  # nothing was done
    logged = [(entry.path, entry.items, entry.fault) for entry in emulator.log]
    assert logged[0] == (C2C, ("1_833502_1572869830",), "code_500")


async def test_served_over_http_under_its_own_prefix(clock: FakeClock) -> None:
    from batchrecall.emulators.server import EmulatorSet

    emulators = EmulatorSet(clock=clock)
    state = emulators.tencent.state
    state.add_c2c_message("1_1_1", sender="a", receiver="b")
    sig = build_usersig(
        sdkappid=state.sdkappid,
        identifier=state.identifier,
        secret_key=state.secret_key,
        issued_at=int(clock.now),
        expire_s=3600,
    )
    params: dict[str, str | int] = {
        "sdkappid": state.sdkappid,
        "identifier": state.identifier,
        "usersig": sig,
        "random": 1,
        "contenttype": "json",
    }
    async with running_server(emulators) as base_url, httpx.AsyncClient() as client:
        answer = await client.post(
            f"{base_url}/tencent{C2C}",
            params=params,
            json={"From_Account": "a", "To_Account": "b", "MsgKey": "1_1_1"},
        )
    assert answer.json()["ErrorCode"] == 0
    assert state.is_recalled("1_1_1")


# The history APIs (collect).

ROAM = "/v4/openim/admin_getroammsg"
GROUP_MSGS = "/v4/group_open_http_svc/group_msg_get_simple"


async def test_roaming_messages_page_back_with_last_msg_key(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    for n in range(120):
        emulator.state.add_c2c_message(
            f"m{n}", sender="p", receiver="q", sent_at=clock.now - 100 + n // 10
        )
    body = {"Operator_Account": "q", "Peer_Account": "p", "MaxCnt": 1000,
            "MinTime": 0, "MaxTime": int(clock.now)}  # fmt: skip
    keys: list[str] = []
    pages = 0
    while True:
        answer = await post(client, clock, ROAM, body)
        pages += 1
        keys += [entry["MsgKey"] for entry in answer["MsgList"]]
        assert len(orjson.dumps(answer["MsgList"])) <= 13 * 1024 + 300
        if answer["Complete"] == 1:
            break
        body = {**body, "MaxTime": answer["LastMsgTime"], "LastMsgKey": answer["LastMsgKey"]}
    assert pages > 1
    assert sorted(keys) == sorted(f"m{n}" for n in range(120))
    assert len(keys) == 120, "no message twice"


async def test_group_messages_come_20_a_call_newest_first(
    client: httpx.AsyncClient, clock: FakeClock, emulator: TencentEmulator
) -> None:
    for seq in range(1, 31):
        emulator.state.add_group_message("@TGS#h", seq, sender="s")
    emulator.state.recall_group("@TGS#h", [30])
    first = await post(client, clock, GROUP_MSGS, {"GroupId": "@TGS#h", "ReqMsgNumber": 50})
    rest = await post(
        client, clock, GROUP_MSGS, {"GroupId": "@TGS#h", "ReqMsgNumber": 20, "ReqMsgSeq": 10}
    )
    unknown = await post(client, clock, GROUP_MSGS, {"GroupId": "@TGS#x", "ReqMsgNumber": 1})
    assert [m["MsgSeq"] for m in first["RspMsgList"]] == list(range(30, 10, -1))
    assert first["RspMsgList"][0]["IsPlaceMsg"] == 2  # recalled
    assert first["IsFinished"] == 0
    assert [m["MsgSeq"] for m in rest["RspMsgList"]] == list(range(10, 0, -1))
    assert rest["IsFinished"] == 1
    assert unknown["ErrorCode"] == 10010
