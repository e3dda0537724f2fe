"""The HTML report: one self-contained file (inline CSS and SVG charts, no script, nothing
fetched) that answers "what did we fail to take back"."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from batchrecall.errors import TRANSIENT_CODES
from batchrecall.models import Status
from batchrecall.results.manifest import utc_iso
from batchrecall.results.view import STATUS_ORDER, ResultsView, run_line, status_counts

STATUS_COLOURS: dict[str, str] = {
    Status.OK: "#2f9e44",
    Status.NOT_FOUND: "#1c7ed6",
    Status.FAILED: "#e03131",
    Status.UNKNOWN: "#f76707",
    Status.SKIPPED: "#fab005",
    Status.INVALID: "#9c36b5",
}
TABLE_ROWS = 500
_TOP_REFS = 20
_MAX_COLUMNS = 120
_BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#212529}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #dee2e6;padding-bottom:.3rem}
.muted{color:#868e96} .tiles{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}
.tile{border:1px solid #dee2e6;border-radius:6px;padding:.5rem .9rem;min-width:7rem}
.tile b{display:block;font-size:1.5rem} .tile span{font-size:.85rem;color:#495057}
.tile i{display:inline-block;width:.7rem;height:.7rem;border-radius:2px;margin-right:.3rem}
table{border-collapse:collapse;font-size:.88rem;width:100%}
td,th{border:1px solid #dee2e6;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f1f3f5} td.num{text-align:right}
.legend span{margin-right:1rem;font-size:.85rem} .legend i{display:inline-block;width:.8rem;
height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-1px}
svg text{font-size:12px;fill:#343a40} code{font-size:.85rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render_html(view: ResultsView) -> str:
    sections = [
        _header(view),
        _runs(view),
        _tiles(view),
        _legend(),
        _section("Items by status", _stacked_bars([("all items", view.statuses)])),
        _section("Outcomes per lane", _stacked_bars(sorted(view.lanes.items()))),
        _section("Outcomes per operation", _stacked_bars(sorted(view.ops.items()))),
        _section("Outcomes per ref", _stacked_bars(_top_refs(view.refs))),
        _section("Throughput over time", _timeline(view.timeline)),
        _permanent_failures(view),
        _invalid_rows(view),
        _left_to_do(view),
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>batchrecall report</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def _section(title: str, body: str) -> str:
    return f"<h2>{_e(title)}</h2>\n{body}"


def _header(view: ResultsView) -> str:
    names = ", ".join(f"<code>{_e(p)}</code>" for p in view.sources)
    torn = f" Ignored {view.torn:,} unreadable line(s)." if view.torn else ""
    return (
        f"<h1>batchrecall report</h1><p class=muted>{names}; written {_e(utc_iso())}.{_e(torn)}</p>"
    )


def _runs(view: ResultsView) -> str:
    runs = list(view.runs())
    problems = "".join(f"<p>warning: {_e(p)}</p>" for p in view.manifest_problems)
    if not runs:
        return _section("Runs", problems + "<p class=muted>No manifest beside the results.</p>")
    head = (
        "<tr><th>run</th><th>started (UTC)</th><th>finished (UTC)</th><th>duration</th>"
        "<th>items/s</th><th>operator</th><th>jobs</th><th>exit</th></tr>"
    )
    body = []
    for run in runs:
        counts = run.get("counts") or {}
        duration = run.get("duration_s")
        sent = counts.get("items_this_run")
        rate = (
            f"{sent / duration:,.1f}"
            if isinstance(duration, int | float) and duration > 0 and isinstance(sent, int)
            else ""
        )
        who = run.get("operator") or {}
        jobs = "<br>".join(
            f"{_e(j.get('name'))} ({_e(j.get('rows'))} rows, sha256 "
            f"<code>{_e(str(j.get('sha256'))[:12])}</code>)"
            for j in run.get("jobs") or []
        )
        took = f"{duration:,.1f} s" if isinstance(duration, int | float) else "not recorded"
        body.append(
            f"<tr><td title='{_e(run_line(run))}'>{_e(run.get('run_id'))}"
            f"{' (resume)' if run.get('resume') else ''}</td>"
            f"<td>{_e(run.get('started_at'))}</td><td>{_e(run.get('finished_at') or '-')}</td>"
            f"<td>{_e(took)}</td><td class=num>{rate}</td>"
            f"<td>{_e(who.get('user'))}@{_e(who.get('host'))}</td><td>{jobs}</td>"
            f"<td class=num>{_e(run.get('exit_code', '-'))}</td></tr>"
        )
    return _section("Runs", problems + f"<table>{head}{''.join(body)}</table>")


def _tiles(view: ResultsView) -> str:
    tiles = [("items", view.items, ""), ("left to do", view.left, "")]
    tiles += [(status, view.statuses.get(status, 0), status) for status in STATUS_ORDER[:-1]]
    tiles += [
        ("invalid rows", view.invalid_rows, Status.INVALID),
        ("duplicates", view.duplicate_rows, ""),
    ]
    cells = []
    for label, value, status in tiles:
        swatch = f"<i style='background:{STATUS_COLOURS[status]}'></i>" if status else ""
        cells.append(f"<div class=tile><b>{value:,}</b><span>{swatch}{_e(label)}</span></div>")
    return f"<div class=tiles>{''.join(cells)}</div>"


def _legend() -> str:
    swatches = "".join(
        f"<span><i style='background:{colour}'></i>{_e(status)}</span>"
        for status, colour in STATUS_COLOURS.items()
    )
    return f"<p class=legend>{swatches}</p>"


def _top_refs(refs: dict[str, Counter[str]]) -> list[tuple[str, Counter[str]]]:
    ranked = sorted(refs.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return ranked[:_TOP_REFS]


def _stacked_bars(rows: Sequence[tuple[str, Counter[str]]], width: int = 960) -> str:
    """One horizontal bar per row, its parts coloured by status, to one scale."""
    if not rows:
        return "<p class=muted>Nothing to show.</p>"
    label_w, right_w, bar_h, gap = 220, 70, 22, 8
    scale = max(sum(counts.values()) for _, counts in rows) or 1
    room = width - label_w - right_w
    parts = []
    for index, (label, counts) in enumerate(rows):
        y = index * (bar_h + gap)
        parts.append(f'<text x="0" y="{y + 15}">{_e(_clip(label, 32))}</text>')
        x = float(label_w)
        for status in STATUS_ORDER:
            n = counts.get(status, 0)
            if not n:
                continue
            w = room * n / scale
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}"'
                f' fill="{STATUS_COLOURS[status]}"><title>{_e(label)}: {_e(status)} {n:,}'
                "</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{sum(counts.values()):,}</text>')
    height = len(rows) * (bar_h + gap)
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
        f"<p class=muted>{_e('; '.join(f'{k}: {status_counts(v)}' for k, v in rows[:8]))}</p>"
    )


def _timeline(timeline: Counter[tuple[str, str]], width: int = 960, height: int = 220) -> str:
    """Items answered per second over time, stacked by status, in buckets that keep the chart
    under _MAX_COLUMNS columns."""
    if not timeline:
        return "<p class=muted>No item was sent.</p>"
    by_second: dict[int, Counter[str]] = {}
    for (second, status), n in timeline.items():
        try:
            moment = datetime.fromisoformat(second).replace(tzinfo=UTC)
        except ValueError:
            continue
        by_second.setdefault(int(moment.timestamp()), Counter())[status] += n
    if not by_second:
        return "<p class=muted>No item was sent.</p>"
    first, last = min(by_second), max(by_second)
    span = last - first + 1
    bucket = next((b for b in _BUCKETS_S if span / b <= _MAX_COLUMNS), _BUCKETS_S[-1])
    columns: dict[int, Counter[str]] = {}
    for moment_s, counts in by_second.items():
        columns.setdefault((moment_s - first) // bucket, Counter()).update(counts)
    count = (span + bucket - 1) // bucket
    peak = max(sum(c.values()) for c in columns.values()) / bucket
    left, bottom, top = 60, 30, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    column_w = plot_w / count
    parts = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#adb5bd"/>',
        f'<text x="0" y="{top + 10}">{peak:,.1f}/s</text>',
        f'<text x="0" y="{top + plot_h}">0</text>',
        f'<text x="{left}" y="{height - 8}">{_e(_clock(first))}</text>',
        f'<text x="{width - 10}" y="{height - 8}" text-anchor="end">'
        f"{_e(_clock(first + count * bucket))} UTC</text>",
    ]
    for index, counts in sorted(columns.items()):
        x = left + index * column_w
        y = float(top + plot_h)
        for status in STATUS_ORDER:
            n = counts.get(status, 0)
            if not n:
                continue
            h = plot_h * (n / bucket) / peak
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(column_w - 1, 1):.1f}" '
                f'height="{max(h, 1):.1f}" fill="{STATUS_COLOURS[status]}"><title>'
                f"{_e(_clock(first + index * bucket))}: {_e(status)} {n:,}</title></rect>"
            )
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
        f"<p class=muted>Items answered per second, in {bucket}-second columns.</p>"
    )


def _clock(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(columns: Sequence[str], rows: Iterable[dict[str, Any]], *, limit: int) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    total = 0
    for row in rows:
        total += 1
        if total > limit:
            continue
        cells = []
        for column in columns:
            value = row.get(column)
            if column == "status" and value in STATUS_COLOURS:
                style = f" style='color:{STATUS_COLOURS[str(value)]};font-weight:600'"
                cells.append(f"<td{style}>{_e(value)}</td>")
            else:
                cells.append(f"<td>{_e(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not total:
        return "<p class=muted>None.</p>"
    more = f"<p class=muted>The first {limit:,} of {total:,}.</p>" if total > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _is_permanent_failure(row: dict[str, Any]) -> bool:
    return row["status"] == Status.FAILED and row.get("error") not in TRANSIENT_CODES


def _permanent_failures(view: ResultsView) -> str:
    groups: Counter[tuple[str, str, str, str]] = Counter()
    for row in view.latest():
        if _is_permanent_failure(row):
            lane = f"{row.get('vendor')}.{row.get('app')}"
            key = (lane, str(row.get("op")), str(row.get("error")), str(row.get("message")))
            groups[key] += 1
    grouped = [
        {"lane": lane, "op": op, "error": error, "vendor's message": message, "items": n}
        for (lane, op, error, message), n in groups.most_common()
    ]
    columns = ("job", "line", "ref", "vendor", "app", "op", "target", "error", "message",
               "http_status", "vendor_code")  # fmt: skip
    rows = (row for row in view.latest() if _is_permanent_failure(row))
    return _section(
        "Permanent failures (not taken back; not retried by --resume)",
        _table(("lane", "op", "error", "vendor's message", "items"), grouped, limit=TABLE_ROWS)
        + "<h3>Items</h3>"
        + _table(columns, rows, limit=TABLE_ROWS),
    )


def _invalid_rows(view: ResultsView) -> str:
    rows = view.invalid_rows_read()
    return _section(
        "Invalid rows (never sent)",
        _table(("job", "line", "ref", "vendor", "op", "message"), rows, limit=TABLE_ROWS),
    )


def _left_to_do(view: ResultsView) -> str:
    columns = ("job", "line", "ref", "vendor", "op", "target", "status", "error", "message")
    return _section(
        "Left to do (what --resume sends again)",
        _table(columns, view.left_to_do(), limit=TABLE_ROWS),
    )
