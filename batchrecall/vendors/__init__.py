"""Vendor adapters, one per vendor, behind the `Adapter` interface; the catalog names each
vendor's class (`VendorSpec.adapter`)."""

from __future__ import annotations

import httpx

from batchrecall import catalog
from batchrecall.config import LaneSettings
from batchrecall.vendors.base import Adapter


def adapter_class(vendor: str) -> type[Adapter]:
    """The adapter class the vendor's registration names, imported on first use."""
    cls = catalog.resolve(catalog.get(vendor).adapter)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise catalog.PluginError(
            f"vendor {vendor!r}: adapter {catalog.get(vendor).adapter} is not an Adapter subclass"
        )
    return cls


def make_adapter(settings: LaneSettings, client: httpx.AsyncClient) -> Adapter:
    return adapter_class(settings.lane.vendor)(settings, client)


__all__ = ["Adapter", "adapter_class", "make_adapter"]
