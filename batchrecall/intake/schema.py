"""The job row schema (SPEC §2): which fields each vendor and op takes, and the Items they make.

Every problem becomes one InvalidRow whose sentence names the field and says how to fix it; a row
is used whole or not at all. A field no schema names is refused: the tool never sends what was
not asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from batchrecall import catalog
from batchrecall.catalog import OpSpec, VendorSpec
from batchrecall.intake.builtin_ops import MAX_DESCRIPTION
from batchrecall.intake.fields import APP_NAME, MAX_TEXT, RowError, RowFields, show
from batchrecall.intake.targets import Target, option
from batchrecall.models import InvalidRow, Item, Op, Vendor

# `sent_at` (ms since the epoch) is the operator's, or `collect`'s, note of when a message was
# sent: never sent to a vendor, not part of the identity; plan and run count the items it shows
# to be past their lane's recall window.
_COMMON_FIELDS = ("vendor", "op", "app", "ref", "sent_at")
MAX_SENT_AT = 10**16
__all__ = ["MAX_DESCRIPTION", "MAX_SENT_AT", "invalid_row", "items_from_row"]


def items_from_row(
    fields: Mapping[str, Any], *, from_csv: bool, job: str, line: int, raw: bytes
) -> list[Item] | InvalidRow:
    """Validate one parsed row into its Items (several for a GoEasy list), or one InvalidRow."""
    row = RowFields(fields, from_csv=from_csv)
    try:
        vendor, op, spec, app, ref = _common(row)
        sent_at = _sent_at(row, from_csv=from_csv)
        targets = _builder(vendor, op, spec)(row)
    except RowError as exc:
        return invalid_row(
            job=job,
            line=line,
            raw=raw,
            problem=str(exc),
            ref=_as_given(row.get("ref")),
            vendor=_as_given(row.get("vendor")),
            app="default" if row.get("app") is None else _as_given(row.get("app")),
            op=_as_given(row.get("op")),
        )
    return [
        Item(
            job=job,
            line=line,
            index=index,
            ref=ref,
            vendor=vendor,
            app=app,
            op=op,
            target=target.target,
            ids=target.ids,
            batch_key=target.batch_key,
            params=target.params,
            sent_at=sent_at,
            options=_options(spec, target),
        )
        for index, target in enumerate(targets)
    ]


def _options(spec: OpSpec, target: Target) -> tuple[str, ...]:
    """The item's identity options: the params its op names as identity, in that order (an
    absent one as its default, if it has one)."""
    params = target.params
    if spec.identity_defaults:
        params = {**spec.identity_defaults, **params}
    return tuple(option(name, params[name]) for name in spec.identity if name in params)


def invalid_row(
    *,
    job: str,
    line: int,
    raw: bytes,
    problem: str,
    ref: str = "",
    vendor: str = "",
    app: str = "",
    op: str = "",
) -> InvalidRow:
    """An InvalidRow; the row's own fields stay empty where it could not be parsed."""
    return InvalidRow(
        job=job, line=line, ref=ref, vendor=vendor, app=app, op=op, problem=problem, raw=raw
    )


def _as_given(value: Any) -> str:
    """A common field as the row gave it, for an invalid row: its text, a number, or empty."""
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


_builders: dict[tuple[Vendor, Op], Callable[[RowFields], list[Target]]] = {}


def _builder(vendor: Vendor, op: Op, spec: OpSpec) -> Callable[[RowFields], list[Target]]:
    """The op's row builder, imported on first use."""
    build = _builders.get((vendor, op))
    if build is None:
        build = _builders[vendor, op] = catalog.resolve(spec.build)
    return build


def _common(row: RowFields) -> tuple[Vendor, Op, OpSpec, str, str]:
    """The common fields, once the row holds no field its vendor and op do not take."""
    vendor_spec: VendorSpec = catalog.get(row.choice("vendor", catalog.names()))
    vendor = Vendor(vendor_spec.name)
    op_name = row.text("op")
    ops = tuple(vendor_spec.ops)
    if op_name not in ops:
        raise RowError(
            f"field 'op' must be one of {', '.join(ops)} for {vendor} (got {show(op_name)})"
        )
    op = Op(op_name)
    schema = vendor_spec.ops[op]
    unknown = [name for name in row.names() if name not in (*_COMMON_FIELDS, *schema.fields)]
    if unknown:
        names = ", ".join(show(name) for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise RowError(
            f"unknown field{plural} {names}: {vendor} {op} takes {', '.join(schema.fields)}"
        )
    app = row.optional_text("app")
    if app is None:
        app = "default"
    elif not APP_NAME.fullmatch(app):
        raise RowError(f"field 'app' must be letters, digits, '_' or '-' (got {show(app)})")
    return vendor, op, schema, app, row.ref()


def _sent_at(row: RowFields, *, from_csv: bool) -> int | None:
    """`sent_at`: ms since the epoch, a JSON integer (digits in CSV), before the year 2286."""
    value = row.get("sent_at")
    if value is None:
        return None
    if from_csv and isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_SENT_AT:
        raise RowError(
            f"field 'sent_at' must be a time in ms since the epoch, a positive integer "
            f"(got {show(value)})"
        )
    return value
