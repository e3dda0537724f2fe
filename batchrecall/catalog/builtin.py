"""The built-in vendors' registrations, which batchrecall's own entry points name."""

from __future__ import annotations

from batchrecall.catalog.spec import (
    ConfigSpec,
    Credentials,
    EmulatorSpec,
    OpSpec,
    RecallWindow,
    Setting,
    VendorSpec,
)
from batchrecall.models import Op

_OPS = "batchrecall.intake.builtin_ops"
_EMULATED = "batchrecall.emulators.builtin"
_DAY_S = 86400.0

_EASEMOB_KEYS = Credentials(plain=("org_name", "app_name", "client_id"), secret=("client_secret",))
# Easemob lanes with `auth = "agora"` (Agora Chat): app tokens from the App ID and Certificate.
_AGORA_KEYS = Credentials(plain=("org_name", "app_name", "app_id"), secret=("app_certificate",))

EASEMOB = VendorSpec(
    name="easemob",
    title="Easemob",
    # Half of the documented 100/s: client traffic shares the vendor quota.
    default_rate=50.0,
    config=ConfigSpec(
        credentials=_EASEMOB_KEYS,
        auths={"easemob": _EASEMOB_KEYS, "agora": _AGORA_KEYS},
        builtin_settings=("batch_recall", "export_utc_offset", "token_lifetime_s"),
        app_identity=("org_name", "app_name"),
    ),
    ops={
        Op.RECALL: OpSpec(
            fields=("msg_id", "to", "chat_type", "from", "force", "sync_device"),
            build=f"{_OPS}:easemob_recall",
            max_items=30,  # Easemob batch_recall: at most 30 messages a call
            identity=("force",),
            # batch_recall = false: msg_recall, one message a call
            batch_switch="batch_recall",
            # vendors.md §1.7: two minutes unless the console sets another (up to 7 days).
            recall_window=RecallWindow(default_s=120.0),
        ),
        Op.DELETE_CONVERSATION: OpSpec(
            fields=("username", "channel", "type", "delete_roam"),
            build=f"{_OPS}:easemob_delete_conversation",
            max_items=1,  # user_channel: one conversation a call
            identity=("delete_roam",),
            pacing_field="username",  # vendors.md §1.8: 5 calls a minute per user
        ),
    },
    adapter="batchrecall.vendors.easemob:EasemobAdapter",
    emulator=EmulatorSpec(
        factory="batchrecall.emulators.easemob:EasemobEmulator",
        lane_config=f"{_EMULATED}:easemob_lane",
        seed=f"{_EMULATED}:seed_easemob",
    ),
    window_hint="or recall with force: true (the receiver's copy)",
)

GOEASY = VendorSpec(
    name="goeasy",
    title="GoEasy",
    default_rate=10.0,
    config=ConfigSpec(credentials=Credentials(secret=("appkey",)), app_identity=("appkey",)),
    ops={
        Op.RECALL: OpSpec(
            fields=("userAId", "userBId", "groupId", "messages", "recaller"),
            build=f"{_OPS}:goeasy_recall",
            max_items=20,  # /v2/im/history/recall: "每次最多撤回20条消息"
            # The server's window is not documented; the client SDK recalls messages of the
            # last 4 hours (vendors.md §3), taken as the default: an inference.
            recall_window=RecallWindow(default_s=4 * 3600.0),
            to_row=f"{_OPS}:goeasy_row",
        ),
    },
    adapter="batchrecall.vendors.goeasy:GoEasyAdapter",
    emulator=EmulatorSpec(
        factory="batchrecall.emulators.goeasy:GoEasyEmulator",
        lane_config=f"{_EMULATED}:goeasy_lane",
        seed=f"{_EMULATED}:seed_goeasy",
    ),
)

YUNXIN = VendorSpec(
    name="yunxin",
    title="NetEase Yunxin",
    default_rate=50.0,
    config=ConfigSpec(
        credentials=Credentials(plain=("app_key",), secret=("app_secret",)),
        app_identity=("app_key",),
    ),
    ops={
        Op.RECALL: OpSpec(
            fields=(
                "conversation_id",
                "message_server_id",
                "type",
                "description",
                "ignore_revoke_time",
                "check_team_member_valid",
            ),
            build=f"{_OPS}:yunxin_recall",
            max_items=1,  # v2 has no batch recall
            identity=("type",),
            # vendors.md §2.9: a two-way recall within the console's window (default 2
            # minutes); a one-way recall within 30 days (seen in the SDK only).
            recall_window=RecallWindow(default_s=120.0, by_option={"type=1": 30 * _DAY_S}),
        ),
        Op.DELETE_MESSAGE: OpSpec(
            fields=(
                "conversation_id",
                "message_server_id",
                "description",
                "check_team_member_valid",
            ),
            build=f"{_OPS}:yunxin_delete_message",
            max_items=1,
            # A one-way delete within 30 days (vendors.md §2.9), whatever the console says.
            recall_window=RecallWindow(default_s=30 * _DAY_S, configurable=False),
            to_row=f"{_OPS}:yunxin_delete_message_row",
        ),
        Op.DELETE_CONVERSATION: OpSpec(
            fields=("conversation_id", "clear_message"),
            build=f"{_OPS}:yunxin_delete_conversation",
            max_items=100,  # batch conversation delete: at most 100 ids a call
            identity=("clear_message",),
        ),
        Op.CLEAR_HISTORY: OpSpec(
            fields=("conversation_id", "type"),
            build=f"{_OPS}:yunxin_clear_history",
            max_items=1,
            identity=("type",),
        ),
    },
    adapter="batchrecall.vendors.yunxin:YunxinAdapter",
    emulator=EmulatorSpec(
        factory="batchrecall.emulators.yunxin:YunxinEmulator",
        lane_config=f"{_EMULATED}:yunxin_lane",
        seed=f"{_EMULATED}:seed_yunxin",
    ),
)

_TENCENT_ROWS = "batchrecall.intake.tencent_rows"

TENCENT = VendorSpec(
    name="tencent",
    title="Tencent Cloud IM",
    default_rate=100.0,  # half of the documented 200/s of each recall/delete API
    config=ConfigSpec(
        credentials=Credentials(
            plain=("sdkappid", "identifier"), secret=("secret_key",), numbers=("sdkappid",)
        ),
        app_identity=("sdkappid",),
    ),
    # No recall window: the server APIs take back what roaming storage still holds (README).
    ops={
        Op.RECALL: OpSpec(
            fields=("From_Account", "To_Account", "MsgKey", "GroupId", "MsgSeq", "Reason"),
            build=f"{_TENCENT_ROWS}:recall",
            # group_msg_recall: "一次请求最多可以撤回10条消息 seq"; a one-to-one recall travels
            # alone (its item's batch key is its own).
            max_items=10,
        ),
        Op.DELETE_MESSAGE: OpSpec(
            fields=("Operator_Account", "Peer_Account", "MsgKey"),
            build=f"{_TENCENT_ROWS}:delete_message",
            max_items=30,  # delete_c2c_msg_ramble: "一次最多删除30条消息"
        ),
        Op.DELETE_CONVERSATION: OpSpec(
            fields=("From_Account", "To_Account", "ToGroupid", "ClearRamble"),
            build=f"{_TENCENT_ROWS}:delete_conversation",
            max_items=1,  # recentcontact/delete: one conversation a call
            identity=("ClearRamble",),
        ),
    },
    adapter="batchrecall.vendors.tencent:TencentAdapter",
    emulator=EmulatorSpec(
        factory="batchrecall.emulators.tencent:TencentEmulator",
        lane_config=f"{_EMULATED}:tencent_lane",
        seed=f"{_EMULATED}:seed_tencent",
    ),
)

_RONGCLOUD_ROWS = "batchrecall.intake.rongcloud_rows"

RONGCLOUD = VendorSpec(
    name="rongcloud",
    title="RongCloud",
    default_rate=50.0,  # recall: "每秒钟限 100 次"
    config=ConfigSpec(
        credentials=Credentials(plain=("app_key",), secret=("app_secret",)),
        settings=(
            Setting(
                name="timestamp_unit",
                kind=str,
                default="s",
                doc='the signature\'s Timestamp in seconds (what the official SDKs send) or "ms" '
                "(what the documents say)",
                choices=("s", "ms"),
            ),
        ),
        app_identity=("app_key",),
    ),
    ops={
        Op.RECALL: OpSpec(
            fields=(
                "fromUserId",
                "conversationType",
                "targetId",
                "messageUID",
                "sentTime",
                "busChannel",
                "isDelete",
                "isAdmin",
                "extra",
                "disablePush",
            ),
            build=f"{_RONGCLOUD_ROWS}:recall",
            max_items=1,  # one messageUID a call: RongCloud has no batch recall
            identity=("isDelete",),
            identity_defaults={"isDelete": 0},  # 0: leave a recall notice, RongCloud's default
            # No recall window is documented for the server API (the old Python SDK: "撤回时间无
            # 限制"); a lane's configured one is counted all the same.
            recall_window=RecallWindow(default_s=None),
        ),
        Op.CLEAR_HISTORY: OpSpec(
            fields=("conversationType", "fromUserId", "targetId", "msgTimestamp"),
            build=f"{_RONGCLOUD_ROWS}:clear_history",
            max_items=1,  # one conversation a call
            identity=("msgTimestamp",),
        ),
    },
    adapter="batchrecall.vendors.rongcloud:RongCloudAdapter",
    emulator=EmulatorSpec(
        factory="batchrecall.emulators.rongcloud:RongCloudEmulator",
        lane_config=f"{_EMULATED}:rongcloud_lane",
        seed=f"{_EMULATED}:seed_rongcloud",
    ),
)

BUILTIN = (EASEMOB, GOEASY, YUNXIN, TENCENT, RONGCLOUD)
