"""Vendor adapters, one per vendor, behind the `Adapter` interface."""

from __future__ import annotations

import httpx

from batchrecall.config import LaneSettings
from batchrecall.models import Vendor
from batchrecall.vendors.base import Adapter
from batchrecall.vendors.easemob import EasemobAdapter
from batchrecall.vendors.goeasy import GoEasyAdapter
from batchrecall.vendors.rongcloud import RongCloudAdapter
from batchrecall.vendors.tencent import TencentAdapter
from batchrecall.vendors.yunxin import YunxinAdapter

ADAPTERS: dict[Vendor, type[Adapter]] = {
    Vendor.EASEMOB: EasemobAdapter,
    Vendor.GOEASY: GoEasyAdapter,
    Vendor.YUNXIN: YunxinAdapter,
    Vendor.RONGCLOUD: RongCloudAdapter,
    Vendor.TENCENT: TencentAdapter,
}


def make_adapter(settings: LaneSettings, client: httpx.AsyncClient) -> Adapter:
    return ADAPTERS[settings.lane.vendor](settings, client)


__all__ = ["ADAPTERS", "Adapter", "make_adapter"]
