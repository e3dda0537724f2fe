"""`batchrecall report`: the latest outcome of every item, what is left, and an HTML report."""

from __future__ import annotations

import html
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batchrecall.errors import JobFileError, UsageError
from batchrecall.jobs import read_job
from batchrecall.models import Item, Op, Status, Vendor
from batchrecall.results import is_done, read_rows, supersedes
from batchrecall.summary import ExitCode


@dataclass
class ResultsView:
    """The latest row of each item, counted."""

    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    torn: int = 0

    @property
    def statuses(self) -> Counter[str]:
        return Counter(str(r["status"]) for r in self.latest.values())

    @property
    def errors(self) -> Counter[str]:
        return Counter(str(r["error"]) for r in self.latest.values() if r.get("error"))

    def by_lane(self) -> dict[str, Counter[str]]:
        lanes: dict[str, Counter[str]] = {}
        for row in self.latest.values():
            lane = f"{row.get('vendor') or '?'}.{row.get('app') or '?'}"
            lanes.setdefault(lane, Counter())[str(row["status"])] += 1
        return lanes

    def left_to_do(self) -> dict[str, dict[str, Any]]:
        return {
            key: row
            for key, row in self.latest.items()
            if not is_done(str(row["status"]), str(row.get("error") or ""))
        }


def load_view(path: Path) -> ResultsView:
    if not path.is_file():
        raise UsageError(f"{path}: no such results file")
    rows, torn = read_rows(path)
    view = ResultsView()
    for row in rows:
        key = str(row["item_key"])
        if supersedes(row, key in view.latest):
            view.latest[key] = row
    view.torn = len(torn)
    return view


def run_report(results: Path, *, failed_jobs: Path | None, html: Path | None) -> int:
    view = load_view(results)
    out = sys.stdout
    print(f"{results}: {len(view.latest)} items (latest row of each)", file=out)
    if view.torn:
        print(f"  ignored {view.torn} unreadable line(s)", file=out)
    for status, n in view.statuses.most_common():
        print(f"  {status:<10} {n}", file=out)
    for lane, counts in sorted(view.by_lane().items()):
        print(f"  {lane}: " + ", ".join(f"{s} {n}" for s, n in counts.most_common()), file=out)
    if view.errors:
        print("  errors: " + ", ".join(f"{c} {n}" for c, n in view.errors.most_common()), file=out)
    left = view.left_to_do()
    print(f"  left to do: {len(left)}", file=out)
    if failed_jobs is not None:
        written = write_failed_jobs(left, failed_jobs)
        print(f"Wrote {written} rows still to do to {failed_jobs}", file=out)
    if html is not None:
        html.write_text(render_html(results, view), encoding="utf-8")
        print(f"Wrote the HTML report to {html}", file=out)
    return (
        ExitCode.OK if not left and not view.statuses.get(Status.INVALID) else ExitCode.INCOMPLETE
    )


def write_failed_jobs(left: dict[str, dict[str, Any]], target: Path) -> int:
    """A JSONL job file with one row for every item left to do, rebuilt from its job file."""
    jobs = sorted({str(row["job"]) for row in left.values()})
    written = 0
    with target.open("wb") as handle:
        for job in jobs:
            try:
                rows = read_job(Path(job), job_name=job)
            except JobFileError as exc:
                raise UsageError(f"cannot rebuild rows of {job}: {exc}") from None
            for row in rows:
                if isinstance(row, Item) and row.item_key in left:
                    handle.write(orjson.dumps(job_row(row)) + b"\n")
                    written += 1
    return written


def job_row(item: Item) -> dict[str, Any]:
    """The job-file row that asks for exactly this item."""
    row: dict[str, Any] = {"vendor": str(item.vendor), "op": str(item.op), "app": item.app}
    if item.ref:
        row["ref"] = item.ref
    params = dict(item.params)
    if item.vendor is Vendor.GOEASY:
        params["messages"] = [params.pop("timestamp")]
    if item.vendor is Vendor.YUNXIN and item.op is Op.DELETE_MESSAGE:
        params.pop("type", None)
    row.update(params)
    return row


def _bar_chart(title: str, counts: Counter[str]) -> str:
    total = max(counts.values(), default=1)
    rows = []
    for i, (label, n) in enumerate(counts.most_common()):
        width = 360 * n / total
        y = 28 + i * 26
        rows.append(
            f'<text x="0" y="{y + 14}">{html.escape(label)}</text>'
            f'<rect x="170" y="{y}" width="{width:.1f}" height="18" class="bar"/>'
            f'<text x="{176 + width:.1f}" y="{y + 14}">{n}</text>'
        )
    height = 36 + 26 * len(counts)
    return (
        f'<h2>{html.escape(title)}</h2><svg width="600" height="{height}" role="img">'
        + "".join(rows)
        + "</svg>"
    )


def render_html(results: Path, view: ResultsView) -> str:
    charts = [_bar_chart("Items by status", view.statuses)]
    if view.errors:
        charts.append(_bar_chart("Errors", view.errors))
    for lane, counts in sorted(view.by_lane().items()):
        charts.append(_bar_chart(f"Lane {lane}", counts))
    left = view.left_to_do()
    table = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(row.get(c) or ''))}</td>"
            for c in ("job", "line", "vendor", "op", "target", "status", "error", "message")
        )
        + "</tr>"
        for row in list(left.values())[:500]
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>batchrecall report</title>
<style>body{{font-family:sans-serif;margin:2em}} .bar{{fill:#4a7bd0}}
table{{border-collapse:collapse}} td{{border:1px solid #ccc;padding:2px 6px}}</style></head>
<body><h1>batchrecall report</h1><p>{html.escape(str(results))}: {len(view.latest)} items,
{len(left)} left to do.</p>
{"".join(charts)}
<h2>Left to do (first 500)</h2><table>{table}</table></body></html>
"""
