"""What an operator would otherwise run: a sequential httpx loop, and `xargs -P 16` with curl.

Both send the same Yunxin recalls as batchrecall, one request an item, signed as Yunxin asks,
and neither retries: an item whose request was throttled is simply not done.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from batchrecall.config import LaneSettings
from batchrecall.models import LaneKey, Vendor
from batchrecall.vendors.yunxin import YunxinAdapter
from benchmarks.vendor_server import Served


@dataclass(frozen=True)
class LoopFigures:
    done: int
    seconds: float
    throttle_answers: int

    @property
    def done_per_s(self) -> float:
        return self.done / self.seconds


def _targets(job: Path, lane: LaneSettings) -> list[str]:
    urls = []
    for line in job.read_bytes().splitlines():
        row = orjson.loads(line)
        conversation = row["conversation_id"].replace("|", "%7C")
        path = f"/im/v2/conversations/{conversation}/messages/{row['message_server_id']}?type=2"
        urls.append(lane.base_url + path)
    return urls


def _signer(lane: LaneSettings) -> YunxinAdapter:
    return YunxinAdapter(lane, httpx.AsyncClient())  # only its auth_headers() is used


def _throttled(answers: list[dict[str, Any]]) -> int:
    return sum(1 for a in answers if a.get("code") == 416)


def sequential_httpx(served: Served, job: Path) -> LoopFigures:
    lane = served.config().lane(LaneKey(vendor=Vendor.YUNXIN, app="default"))
    signer = _signer(lane)
    answers = []
    start = time.perf_counter()
    with httpx.Client(timeout=15) as client:
        for url in _targets(job, lane):
            answers.append(client.delete(url, headers=signer.auth_headers()).json())
    seconds = time.perf_counter() - start
    done = sum(1 for a in answers if a.get("code") in (200, 404))
    return LoopFigures(done=done, seconds=seconds, throttle_answers=_throttled(answers))


def curl_available() -> bool:
    return shutil.which("curl") is not None and shutil.which("xargs") is not None


def xargs_curl(served: Served, job: Path, tmp: Path) -> LoopFigures:
    """`xargs -P 16 -L 1 curl ...`, one line of curl arguments an item, signed just before."""
    lane = served.config().lane(LaneKey(vendor=Vendor.YUNXIN, app="default"))
    signer = _signer(lane)
    lines = []
    for url in _targets(job, lane):
        headers = " ".join(f"-H '{k}: {v}'" for k, v in signer.auth_headers().items())
        lines.append(f"{headers} '{url}'")
    arguments = tmp / "curl-args.txt"
    arguments.write_text("\n".join(lines) + "\n", encoding="utf-8")
    start = time.perf_counter()
    with arguments.open("rb") as stdin:
        done = subprocess.run(
            ["xargs", "-P", "16", "-L", "1", "curl", "-s", "-X", "DELETE"],
            stdin=stdin,
            capture_output=True,
            check=True,
        )
    seconds = time.perf_counter() - start
    # Parallel curls share one pipe: each answer is one small write, the newlines may land apart.
    codes = [int(code) for code in re.findall(rb'"code":\s*(\d+)', done.stdout)]
    ok = sum(1 for code in codes if code in (200, 404))
    return LoopFigures(done=ok, seconds=seconds, throttle_answers=codes.count(416))
