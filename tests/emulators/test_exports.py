"""The Tencent and RongCloud emulators' hourly exports: the documented answers, the hour files,
the rate, and the refusals."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from batchrecall.emulators.rongcloud import RongCloudEmulator
from batchrecall.emulators.tencent import TencentEmulator
from batchrecall.emulators.tencent_export import EXPORT_RATE
from batchrecall.vendors.rongcloud_signature import signed_headers
from batchrecall.vendors.tencent_usersig import build_usersig
from tests.emulators.support import client_for

pytestmark = pytest.mark.anyio

NOW = 1_796_300_000.0  # 2026-12-03 ... UTC
BEIJING = timezone(timedelta(hours=8))
HOUR = datetime.fromtimestamp(NOW, UTC).astimezone(BEIJING).strftime("%Y%m%d%H")


def tencent_query(emulator: TencentEmulator) -> dict[str, Any]:
    state = emulator.state
    return {
        "sdkappid": state.sdkappid,
        "identifier": state.identifier,
        "usersig": build_usersig(
            sdkappid=state.sdkappid,
            identifier=state.identifier,
            secret_key=state.secret_key,
            issued_at=int(NOW),
            expire_s=86400,
        ),
        "random": 99999999,
        "contenttype": "json",
    }


async def test_tencent_get_history_answers_files_of_the_hours_records() -> None:
    emulator = TencentEmulator(clock=lambda: NOW + 60)
    emulator.state.add_c2c_message("1_2_3", sender="a", receiver="b", sent_at=NOW)
    emulator.state.add_c2c_message("4_5_6", sender="a", receiver="b", sent_at=NOW - 86400)
    client = client_for(emulator.app)

    async def ask(chat_type: str, hour: str) -> dict[str, Any]:
        response = await client.post(
            "/v4/open_msg_svc/get_history",
            params=tencent_query(emulator),
            json={"ChatType": chat_type, "MsgTime": hour},
        )
        answer: dict[str, Any] = response.json()
        return answer

    answer = await ask("C2C", HOUR)
    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("OK", 0)
    [entry] = answer["File"]
    assert set(entry) == {"URL", "ExpireTime", "FileSize", "FileMD5", "GzipSize", "GzipMD5"}
    content = (await client.get(entry["URL"])).content
    assert len(content) == entry["GzipSize"]
    [record] = [orjson.loads(line) for line in gzip.decompress(content).splitlines()]
    assert (record["From_Account"], record["MsgKey"], record["MsgTimestamp"]) == (
        "a",
        "1_2_3",
        int(NOW),
    )
    assert (await ask("Group", HOUR))["File"] == []  # no group message that hour
    later = (datetime.strptime(HOUR, "%Y%m%d%H") + timedelta(hours=1)).strftime("%Y%m%d%H")
    assert (await ask("C2C", later))["File"] == []  # not begun yet
    assert (await client.get(entry["URL"].replace("sig=", "sig=0"))).status_code == 403
    assert (await ask("C2C", "2026-12-03"))["ErrorCode"] != 0


async def test_tencent_get_history_is_held_to_its_documented_rate() -> None:
    emulator = TencentEmulator(clock=lambda: NOW)
    client = client_for(emulator.app)
    codes = [
        (
            await client.post(
                "/v4/open_msg_svc/get_history",
                params=tencent_query(emulator),
                json={"ChatType": "C2C", "MsgTime": HOUR},
            )
        ).json()["ErrorCode"]
        for _ in range(EXPORT_RATE + 1)
    ]
    assert codes == [0] * EXPORT_RATE + [60007]


async def rongcloud_post(client: httpx.AsyncClient, emulator: RongCloudEmulator, form: str) -> Any:
    headers = signed_headers(emulator.state.app_key, emulator.state.app_secret, nonce="n1",
                             timestamp=str(int(NOW)))  # fmt: skip
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return await client.post("/message/history.json", content=form.encode(), headers=headers)


async def test_rongcloud_history_answers_the_hours_log_or_an_empty_url() -> None:
    emulator = RongCloudEmulator(clock=lambda: NOW + 60)
    emulator.state.add_message("UID-1", sender="a", conversation_type=1, target_id="b",
                               sent_ms=int(NOW * 1000) + 7)  # fmt: skip
    client = client_for(emulator.app)
    answer = await rongcloud_post(client, emulator, f"date={HOUR}")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["code"], body["date"]) == (200, HOUR)
    [record] = [
        orjson.loads(x)
        for x in gzip.decompress((await client.get(body["url"])).content).splitlines()
    ]
    assert (record["fromUserId"], record["msgUID"], record["targetId"]) == ("a", "UID-1", "b")
    assert record["dateTime"].endswith(".007")
    empty = (await rongcloud_post(client, emulator, "date=2026010100")).json()
    assert (empty["code"], empty["url"]) == (200, "")
    emulator.export.enabled = False
    refused = await rongcloud_post(client, emulator, f"date={HOUR}")
    assert (refused.status_code, refused.json()["code"]) == (430, 1009)
