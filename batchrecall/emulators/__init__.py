"""Stateful fakes of the Easemob, GoEasy, Yunxin, Tencent Cloud IM and RongCloud REST APIs, as
ASGI apps.

Each emulator behaves as its vendor documents (auth, batch limits, recall windows, not-found
answers, rate limits) and injects latency and faults on demand; `EmulatorSet` mounts every
vendor's (a plugin vendor's too) in one app, and `running_server` / `serve` put it on HTTP.
"""

from batchrecall.emulators.common import (
    DEFAULT_SETTINGS,
    Clock,
    EmulatorSettings,
    LoggedRequest,
    SlidingWindow,
)
from batchrecall.emulators.easemob import EasemobEmulator
from batchrecall.emulators.easemob_state import EasemobState
from batchrecall.emulators.faults import ConnectionDropped, Fault, FaultKind, FaultPlan
from batchrecall.emulators.goeasy import GoEasyEmulator
from batchrecall.emulators.goeasy_state import GoEasyState
from batchrecall.emulators.rongcloud import RongCloudEmulator
from batchrecall.emulators.rongcloud_state import RongCloudState
from batchrecall.emulators.server import EmulatorSet, running_server, serve
from batchrecall.emulators.tencent import TencentEmulator
from batchrecall.emulators.tencent_state import TencentState
from batchrecall.emulators.wire import VendorEmulator
from batchrecall.emulators.yunxin import YunxinEmulator
from batchrecall.emulators.yunxin_state import YunxinState

__all__ = [
    "DEFAULT_SETTINGS",
    "Clock",
    "ConnectionDropped",
    "EasemobEmulator",
    "EasemobState",
    "EmulatorSet",
    "EmulatorSettings",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "GoEasyEmulator",
    "GoEasyState",
    "LoggedRequest",
    "RongCloudEmulator",
    "RongCloudState",
    "SlidingWindow",
    "TencentEmulator",
    "TencentState",
    "VendorEmulator",
    "YunxinEmulator",
    "YunxinState",
    "running_server",
    "serve",
]
