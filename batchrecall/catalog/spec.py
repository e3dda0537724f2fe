"""The registration of one vendor: what the product needs to know of it, declared once.

A `VendorSpec` names everything outside the vendor's own modules by reference
(`"package.module:attribute"`): declaring a vendor imports nothing of its adapter, emulator or
row builders, so a command that only reads job files pays for none of them.

The records are typed NamedTuples, immutable like the package's frozen dataclasses: every
command loads them, and a dataclass costs about 1.5 ms to create at import (seven of them were
half of what the catalog added to `validate`'s start), a NamedTuple a fifth of that. Build them
with keywords.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from batchrecall.models import Op

Ref = str
"""`"package.module:attribute"`, imported on first use."""

NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""A vendor's name: a config section, a job row's `vendor` and the emulators' mount prefix."""
RESERVED_NAMES = frozenset({"run", "limits"})
"""Config sections of the product itself: no vendor may take these names."""
BUILTIN_SETTINGS = ("batch_recall", "export_utc_offset", "token_lifetime_s")
"""The product's own typed lane settings (`LaneSettings` fields) a registration may take."""
_NONE: Mapping[Any, Any] = MappingProxyType({})


class Credentials(NamedTuple):
    """The config keys of a lane that name and authenticate the vendor app: all required.

    `secret` ones are read as secrets (`env:NAME`, `file:PATH` or a literal), never printed.
    """

    plain: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    """Plain keys that may be written as a positive whole number, kept as their digits
    (Tencent's `sdkappid`)."""

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self.plain, *self.secret)


class Setting(NamedTuple):
    """An optional config key of a plugin vendor's lanes, read into `LaneSettings.extras`."""

    name: str
    kind: type[bool] | type[int] | type[float] | type[str]
    default: bool | int | float | str
    doc: str = ""
    choices: tuple[bool | int | float | str, ...] = ()
    """The values it may take (none: any of its kind)."""


class ConfigSpec(NamedTuple):
    """A vendor's config section: `[vendor.app]` tables holding these keys.

    Every lane also takes `base_url` (required), `rate`, `history_rate` and `recall_window_s`.
    `auths` offers other credential sets, chosen by the lane's `auth` key (the first is the
    default, `credentials` being the first's keys). `builtin_settings` names the product's own
    typed lane settings this vendor takes (`batch_recall`, `export_utc_offset`, and
    `token_lifetime_s` with an auth other than the first); `settings` are a plugin's own.
    """

    credentials: Credentials
    auths: Mapping[str, Credentials] = _NONE
    builtin_settings: tuple[str, ...] = ()
    settings: tuple[Setting, ...] = ()
    app_identity: tuple[str, ...] = ()
    """The credential keys that name the vendor app, whose lanes share one rate limit whatever
    the profile is called (a secret one only ever as a hash); none: the profile's name."""


class RecallWindow(NamedTuple):
    """How long after a message was sent the vendor still does this op.

    `default_s` is the vendor's own (None: none documented, only a lane's counts); a lane's
    `recall_window_s` replaces it when `configurable`. `by_option` gives identity options
    (`type=1`) their own fixed window.
    """

    default_s: float | None
    configurable: bool = True
    by_option: Mapping[str, float] = _NONE


class OpSpec(NamedTuple):
    """One op of a vendor: the job row fields it takes and how its calls are made.

    `build` reads a row (`RowFields`) into its targets (`list[Target]`). `identity` names the
    params that change what the vendor does, in the order the item key gives them (SPEC §2);
    each present one becomes an option `name=value` of the item's identity, and one a row left
    out counts as its `identity_defaults` value when it has one (RongCloud's `isDelete`: 0), so
    that a row giving the vendor's default names the same item. A call carries at
    most `max_items` items; one only, when the lane's bool setting `batch_switch` is false.
    `pacing_field` names the param whose value has its own documented rate (Easemob: 5
    conversation deletes a minute per user).
    """

    fields: tuple[str, ...]
    build: Ref
    max_items: int
    identity: tuple[str, ...] = ()
    identity_defaults: Mapping[str, Any] = _NONE
    batch_switch: str | None = None
    pacing_field: str | None = None
    recall_window: RecallWindow | None = None
    to_row: Ref | None = None
    """A function of an Item giving the job row fields that ask for exactly it again (report
    --failed-jobs); None: the item's params as they are."""


class EmulatorSpec(NamedTuple):
    """The vendor's emulator: `factory(settings, clock=clock)` makes a `VendorEmulator`,
    served under `prefix`; `lane_config(emulator)` gives a lane's keys (all but base_url and
    rate) that it accepts; `seed(emulator, item, twist, sent_at)` makes an item exist there."""

    factory: Ref
    lane_config: Ref
    seed: Ref
    prefix: str = ""
    """The mount prefix (default `/` and the vendor's name)."""


class VendorSpec(NamedTuple):
    """One vendor as the product knows it. Plugins give one through the `batchrecall.vendors`
    entry point group, named by `name`."""

    name: str
    title: str
    default_rate: float
    """Requests a second a lane sends when its config gives no `rate`."""
    config: ConfigSpec
    ops: Mapping[Op, OpSpec]
    adapter: Ref
    """An `Adapter` subclass, made as `adapter(settings, client)`."""
    emulator: EmulatorSpec | None = None
    window_hint: str = ""
    """Added to the plan's warning of items past their recall window: what else can be done."""

    def op(self, op: Op) -> OpSpec:
        return self.ops[op]

    def items_per_call(self, op: Op, setting: Callable[[str], Any] | None = None) -> int:
        """Items a call of `op` carries; `setting` reads a lane's setting by name (None: the
        vendor's documented limit)."""
        spec = self.ops[op]
        if spec.batch_switch is not None and setting is not None and not setting(spec.batch_switch):
            return 1
        return spec.max_items

    def recall_window_s(
        self, op: Op, options: tuple[str, ...], configured: float | None
    ) -> float | None:
        """How long after it was sent an item of `op` with these identity options can still be
        done (None: no window); `configured` is the lane's `recall_window_s`."""
        window = self.ops[op].recall_window
        if window is None:
            return None
        for option in options:
            if option in window.by_option:
                return window.by_option[option]
        if window.configurable and configured is not None:
            return configured
        return window.default_s

    @property
    def prefix(self) -> str:
        """Where the emulator is mounted: `/name` unless the emulator says otherwise."""
        given = self.emulator.prefix if self.emulator is not None else ""
        return given or f"/{self.name}"

    def problems(self) -> list[str]:
        """What is wrong with this registration (empty when nothing is)."""
        found: list[str] = []
        if not NAME.fullmatch(self.name) or self.name in RESERVED_NAMES:
            found.append(
                f"name {self.name!r} must be 1 to 32 lower-case letters, digits or '_', "
                f"starting with a letter, and not {' or '.join(sorted(RESERVED_NAMES))}"
            )
        if not self.default_rate > 0:
            found.append("default_rate must be positive")
        if not self.ops:
            found.append("declares no op")
        for keys in (self.config.credentials, *self.config.auths.values()):
            if stray := [key for key in keys.numbers if key not in keys.plain]:
                found.append(f"credentials numbers {stray} are not among its plain keys")
        for setting in self.config.settings:
            if setting.choices and setting.default not in setting.choices:
                found.append(f"setting {setting.name}: default {setting.default!r} not a choice")
        if unknown := set(self.config.builtin_settings) - set(BUILTIN_SETTINGS):
            found.append(
                f"builtin_settings {sorted(unknown)} are not {', '.join(BUILTIN_SETTINGS)}"
            )
        for op, spec in self.ops.items():
            if op not in tuple(Op):
                found.append(f"op {op!r} is not one of {', '.join(Op)}")
            elif spec.max_items < 1:
                found.append(f"op {op}: max_items must be at least 1")
            elif missing := [name for name in spec.identity if name not in spec.fields]:
                found.append(f"op {op}: identity {missing} not among its fields")
            elif stray := [name for name in spec.identity_defaults if name not in spec.identity]:
                found.append(f"op {op}: identity_defaults {stray} not among its identity")
        for ref in self.refs():
            if not _is_ref(ref):
                found.append(f"{ref!r} is not a reference 'package.module:attribute'")
        return found

    def refs(self) -> list[Ref]:
        refs = [self.adapter, *(spec.build for spec in self.ops.values())]
        refs += [spec.to_row for spec in self.ops.values() if spec.to_row is not None]
        if self.emulator is not None:
            refs += [self.emulator.factory, self.emulator.lane_config, self.emulator.seed]
        return refs


def _is_ref(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    module, sep, attribute = value.partition(":")
    return bool(sep and module and attribute)
