"""What the catalog's built-in registrations name of their emulators: the keys of a lane that
points at one, and how a job's item is made to exist in it (`emulate --seed`, `--emulate`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchrecall.emulators.easemob import EasemobEmulator
from batchrecall.emulators.goeasy import GoEasyEmulator
from batchrecall.emulators.rongcloud import RongCloudEmulator
from batchrecall.emulators.rongcloud_seeding import seed_rongcloud as _seed_rongcloud
from batchrecall.emulators.tencent import TencentEmulator
from batchrecall.emulators.tencent_state import seed_request
from batchrecall.emulators.yunxin import YunxinEmulator
from batchrecall.models import Item, Op


def easemob_lane(emulator: EasemobEmulator) -> dict[str, Any]:
    state = emulator.state
    return {
        "org_name": state.org_name,
        "app_name": state.app_name,
        "client_id": state.client_id,
        "client_secret": state.client_secret,
        "batch_recall": state.batch_recall_enabled,
    }


def goeasy_lane(emulator: GoEasyEmulator) -> dict[str, Any]:
    return {"appkey": emulator.common_key}


def yunxin_lane(emulator: YunxinEmulator) -> dict[str, Any]:
    return {"app_key": emulator.state.app_key, "app_secret": emulator.state.app_secret}


def tencent_lane(emulator: TencentEmulator) -> dict[str, Any]:
    state = emulator.state
    return {
        "sdkappid": state.sdkappid,
        "identifier": state.identifier,
        "secret_key": state.secret_key,
    }


def rongcloud_lane(emulator: RongCloudEmulator) -> dict[str, Any]:
    return {"app_key": emulator.state.app_key, "app_secret": emulator.state.app_secret}


def seed_easemob(
    emulator: EasemobEmulator, item: Item, twist: Mapping[str, Any], sent_at: float
) -> None:
    params = item.params
    if item.op is Op.DELETE_CONVERSATION:
        emulator.state.add_conversation(
            str(params["username"]), str(params["channel"]), str(params["type"])
        )
    else:
        emulator.state.add_message(
            str(params["msg_id"]),
            sender=str(params.get("from") or "seed-sender"),
            to=str(twist.get("to", params["to"])),
            chat_type=str(params["chat_type"]),
            sent_at=sent_at,
        )


def seed_goeasy(
    emulator: GoEasyEmulator, item: Item, twist: Mapping[str, Any], sent_at: float
) -> None:
    params = item.params
    recaller = params.get("recaller") or {}
    emulator.state.add_message(
        int(params["timestamp"]),
        user_a=params.get("userAId"),
        user_b=params.get("userBId"),
        group_id=params.get("groupId"),
        sent_at=sent_at,
        # The sender: the recaller's id when the row names one, else userAId.
        sender=str(recaller.get("id") or params.get("userAId") or "seed-sender"),
    )


def seed_yunxin(
    emulator: YunxinEmulator, item: Item, twist: Mapping[str, Any], sent_at: float
) -> None:
    params = item.params
    if item.op in (Op.RECALL, Op.DELETE_MESSAGE):
        emulator.state.add_message(
            str(params["conversation_id"]), str(params["message_server_id"]), sent_at=sent_at
        )
    else:
        emulator.state.add_conversation(str(params["conversation_id"]))


def seed_tencent(
    emulator: TencentEmulator, item: Item, twist: Mapping[str, Any], sent_at: float
) -> None:
    seed_request(emulator.state, item.op, item.params, sent_at=sent_at)


def seed_rongcloud(
    emulator: RongCloudEmulator, item: Item, twist: Mapping[str, Any], sent_at: float
) -> None:
    # A RongCloud row carries its own time (`sentTime`): the message is seeded at it, unless a
    # scenario says how long ago it was sent.
    sent_ms = round(sent_at * 1000) if "age_s" in twist else None
    _seed_rongcloud(emulator.state, item.op, item.params, sent_ms=sent_ms)
