"""The vendors installed: every `batchrecall.vendors` entry point, loaded once on first use.

The built-in vendors are entry points of batchrecall itself, so a vendor a site ships as its own
package is found the same way. Loading imports only the registration modules; adapters,
emulators and row builders are imported when first used (`resolve`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint
from typing import Any

from batchrecall.catalog.spec import Ref, VendorSpec
from batchrecall.errors import PluginError

GROUP = "batchrecall.vendors"

_vendors: dict[str, VendorSpec] | None = None
_resolved: dict[Ref, Any] = {}


def vendors() -> Mapping[str, VendorSpec]:
    """Every vendor installed, by name (sorted); a PluginError names a plugin that is broken."""
    global _vendors
    if _vendors is None:
        from importlib.metadata import entry_points

        _vendors = load_specs(entry_points(group=GROUP))
    return _vendors


def names() -> tuple[str, ...]:
    return tuple(vendors())


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
    found: dict[str, tuple[VendorSpec, str]] = {}
    for point in points:
        origin = _origin(point)
        try:
            spec = point.load()
        except Exception as exc:  # any error of a foreign module: say which plugin failed
            raise PluginError(
                f"vendor plugin {point.name!r} ({point.value}{origin}) cannot be loaded: "
                f"{exc.__class__.__name__}: {exc}"
            ) from exc
        if not isinstance(spec, VendorSpec):
            raise PluginError(
                f"vendor plugin {point.name!r} ({point.value}{origin}) is a "
                f"{type(spec).__name__}, not a batchrecall.catalog.VendorSpec"
            )
        problems = spec.problems()
        if spec.name != point.name:
            problems.insert(0, f"registered as {point.name!r} but names itself {spec.name!r}")
        if problems:
            raise PluginError(
                f"vendor plugin {point.name!r} ({point.value}{origin}): {'; '.join(problems)}"
            )
        if point.name in found and found[point.name][0] is not spec:
            raise PluginError(
                f"vendor {point.name!r} is registered twice: by {found[point.name][1]} and by "
                f"{point.value}{origin}; uninstall one of them"
            )
        found[point.name] = (spec, f"{point.value}{origin}")
    from batchrecall.catalog.builtin import BUILTIN

    if not any(spec.name in found for spec in BUILTIN):
        found.update((spec.name, (spec, "batchrecall")) for spec in BUILTIN)
    return {name: found[name][0] for name in sorted(found)}


def _origin(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return f", from {dist.name} {dist.version}" if dist is not None else ""


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
