"""Each vendor's ops, fields, limits, identity options and config keys, declared once.

Job intake, config, the plan and the emulators read a vendor's registration (`VendorSpec`)
here; a site adds its own vendor by shipping a package with a `batchrecall.vendors` entry point
that names its registration (README: vendor plugins).
"""

from batchrecall.catalog.registry import GROUP, find, get, names, reload, resolve, vendors
from batchrecall.catalog.spec import (
    ConfigSpec,
    Credentials,
    EmulatorSpec,
    OpSpec,
    RecallWindow,
    Setting,
    VendorSpec,
)
from batchrecall.errors import PluginError

__all__ = [
    "GROUP",
    "ConfigSpec",
    "Credentials",
    "EmulatorSpec",
    "OpSpec",
    "PluginError",
    "RecallWindow",
    "Setting",
    "VendorSpec",
    "find",
    "get",
    "names",
    "reload",
    "resolve",
    "vendors",
]
