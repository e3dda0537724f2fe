"""The vendors installed: every `batchrecall.vendors` entry point, loaded once on first use.

The built-in vendors are entry points of batchrecall itself, so a vendor a site ships as its own
package is found the same way. Loading imports only the registration modules; adapters,
emulators and row builders are imported when first used (`resolve`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from batchrecall.catalog.spec import Ref, VendorSpec
from batchrecall.errors import PluginError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

GROUP = "batchrecall.vendors"

_vendors: dict[str, VendorSpec] | None = None
_names: tuple[str, ...] = ()
_resolved: dict[Ref, Any] = {}


def vendors() -> Mapping[str, VendorSpec]:
    """Every vendor installed, by name (sorted); a PluginError names a plugin that is broken."""
    global _vendors, _names
    if _vendors is None:
        _vendors = load_specs(_entry_points())
        _names = tuple(_vendors)
    return _vendors


def _entry_points() -> list[EntryPoint]:
    """The group's entry points in every installed package: `entry_points(group=GROUP)`, but
    parsing only the entry point files that name the group (every command pays for this:
    2.4 against 4.9 ms on a venv of 50 packages). A package found twice on the path names the
    same module, hence the same registration: no duplicate."""
    from importlib.metadata import distributions

    found: list[EntryPoint] = []
    for dist in distributions():
        text = dist.read_text("entry_points.txt")
        if text and f"[{GROUP}]" in text:
            found.extend(dist.entry_points.select(group=GROUP))
    return found


def names() -> tuple[str, ...]:
    vendors()
    return _names


def find(name: str) -> VendorSpec | None:
    return vendors().get(name)


def get(name: str) -> VendorSpec:
    """The vendor of this name; KeyError when none is installed (callers check names first)."""
    return vendors()[name]


def reload() -> None:
    """Forget the vendors found, so that the next use looks for them again (tests)."""
    global _vendors
    _vendors = None


def load_specs(points: Iterable[EntryPoint]) -> dict[str, VendorSpec]:
    """The registrations these entry points name, checked; the built-ins are added when none of
    them is there (batchrecall run from a source tree without its metadata)."""
    found: dict[str, tuple[VendorSpec, EntryPoint]] = {}
    for point in points:
        try:
            spec = point.load()
        except Exception as exc:  # any error of a foreign module: say which plugin failed
            raise PluginError(
                f"vendor plugin {_named(point)} cannot be loaded: {exc.__class__.__name__}: {exc}"
            ) from exc
        if not isinstance(spec, VendorSpec):
            raise PluginError(
                f"vendor plugin {_named(point)} is a {type(spec).__name__}, not a "
                "batchrecall.catalog.VendorSpec"
            )
        problems = spec.problems()
        if spec.name != point.name:
            problems.insert(0, f"registered as {point.name!r} but names itself {spec.name!r}")
        if problems:
            raise PluginError(f"vendor plugin {_named(point)}: {'; '.join(problems)}")
        if point.name in found and found[point.name][0] is not spec:
            raise PluginError(
                f"vendor {point.name!r} is registered twice: by {_named(found[point.name][1])} "
                f"and by {_named(point)}; uninstall one of them"
            )
        found[point.name] = (spec, point)
    from batchrecall.catalog.builtin import BUILTIN

    specs = {name: found[name][0] for name in sorted(found)}
    if not any(spec.name in specs for spec in BUILTIN):
        specs = {spec.name: spec for spec in BUILTIN} | specs
    return specs


def _named(point: EntryPoint) -> str:
    """The entry point as an error names it: its name, target and package (read only here:
    a package's metadata takes milliseconds to parse)."""
    dist = getattr(point, "dist", None)
    origin = f", from {dist.name} {dist.version}" if dist is not None else ""
    return f"{point.name!r} ({point.value}{origin})"


def resolve(ref: Ref) -> Any:
    """The object `"package.module:attribute"` names, imported once."""
    value = _resolved.get(ref)
    if value is None:
        module, _, attribute = ref.partition(":")
        try:
            value = importlib.import_module(module)
            for part in attribute.split("."):
                value = getattr(value, part)
        except (ImportError, AttributeError) as exc:
            raise PluginError(f"vendor plugin reference {ref!r} cannot be imported: {exc}") from exc
        _resolved[ref] = value
    return value
