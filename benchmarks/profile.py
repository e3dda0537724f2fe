"""Where a run's CPU goes: the product (`run_request`, Yunxin single recalls, no rate limit)
against the bare loopback server answering after 50 ms, under pyinstrument.

Prints each layer's share of the busy time (waiting in the event loop's `select` left out) and
the functions with the most time of their own; writes the whole profile as HTML.

    make profile                       # 64 in flight
    PROFILE_CONCURRENCY=256 make profile
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import defaultdict
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.frame import Frame

from batchrecall.logs import configure_logging
from benchmarks.http_clients import loopback_server
from benchmarks.jobs import yunxin_job
from benchmarks.product import run_against

CALLS = 8_000
HTML = Path("build/profile.html")

# A frame's own time goes to the innermost of these packages on its stack; time in the standard
# library (a socket's send, the event loop's bookkeeping) goes to the package that called it.
_LAYERS = {
    "aiohttp": "aiohttp (+ yarl, multidict)",
    "yarl": "aiohttp (+ yarl, multidict)",
    "multidict": "aiohttp (+ yarl, multidict)",
    "httpx": "httpx",
    "httpcore": "httpx",
    "anyio": "anyio",
    "batchrecall": "batchrecall",
    "orjson": "batchrecall",
    "structlog": "batchrecall",
}
_IDLE = "waiting (select)"
Seconds = defaultdict[str, float]


def _layer_of(frame: Frame, outer: str) -> str:
    parts = Path(frame.file_path or "").parts
    for part in reversed(parts):
        if part in _LAYERS:
            return _LAYERS[part]
    return outer


def _walk(frame: Frame, outer: str, layers: Seconds, own: Seconds) -> None:
    layer = _layer_of(frame, outer)
    if frame.function == "select" and "selectors" in (frame.file_path or ""):
        layers[_IDLE] += frame.time
        return
    self_time = frame.total_self_time
    layers[layer] += self_time
    own[f"{frame.function} ({frame.file_path_short}:{frame.line_no})"] += self_time
    for child in frame.children:
        _walk(child, layer, layers, own)


def _heaviest(seconds: Seconds) -> list[tuple[str, float]]:
    return sorted(seconds.items(), key=lambda entry: -entry[1])


def main() -> None:
    concurrency = int(os.environ.get("PROFILE_CONCURRENCY", "64"))
    configure_logging(fmt="console", level=logging.ERROR)
    with tempfile.TemporaryDirectory() as folder, loopback_server(50) as base:
        tmp = Path(folder)
        run_against(base, yunxin_job(tmp / "warm.jsonl", 1_000), concurrency)  # imports, pool
        job = yunxin_job(tmp / "profiled.jsonl", CALLS)
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        figures = run_against(base, job, concurrency)
        profiler.stop()
    session = profiler.last_session
    root = session.root_frame() if session is not None else None
    if root is None:
        raise SystemExit("pyinstrument recorded nothing")
    layers: Seconds = defaultdict(float)
    own: Seconds = defaultdict(float)
    _walk(root, "other (standard library)", layers, own)
    busy = sum(t for layer, t in layers.items() if layer != _IDLE)
    print(
        f"{CALLS:,} Yunxin single recalls, {concurrency} in flight, server answering after 50 ms:"
        f" {figures.items_per_s:,.0f} items/s, CPU {figures.cpu_ms_per_call:.3f} ms a call"
        " under the profiler (make bench measures without it)"
    )
    print(f"\nbusy {busy:.2f} s, waiting {layers[_IDLE]:.2f} s; the busy time by layer:")
    for layer, seconds in _heaviest(layers):
        if layer != _IDLE:
            print(f"  {100 * seconds / busy:5.1f}%  {layer}")
    print("\nmost time of their own:")
    for name, seconds in _heaviest(own)[:20]:
        print(f"  {100 * seconds / busy:5.1f}%  {name}")
    HTML.parent.mkdir(exist_ok=True)
    HTML.write_text(profiler.output_html())
    print(f"\nthe whole profile: {HTML}")


if __name__ == "__main__":
    main()
