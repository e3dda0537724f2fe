"""`collect` over a vendor's history as a run sends: retries on transient failures, the lane's
credentials never printed, a progress line on a terminal and log events elsewhere."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import orjson

from batchrecall.cli.collect import _progress
from batchrecall.cli.main import main
from batchrecall.collect.sources import Collected
from batchrecall.emulators.server import EmulatorSet
from tests.collect_server import served


def test_a_gateway_failure_is_asked_again(tmp_path: Path) -> None:
    emulators = EmulatorSet()
    emulators.yunxin.state.add_message("spammer-7|1|alice", 1001, sent_at=time.time() - 60)
    emulators.yunxin.faults.push("http_502", only_path_contains="search_messages")
    out = tmp_path / "spam.jsonl"
    with served(emulators, tmp_path / "c.toml"):
        code = main(["collect", "yunxin", "--config", str(tmp_path / "c.toml"), "--out", str(out),
                     "--sender", "spammer-7", "--since", "1h"])  # fmt: skip
    assert code == 0
    assert [orjson.loads(line)["message_server_id"] for line in out.read_bytes().splitlines()] == [
        "1001"
    ]
    statuses = [r.status for r in emulators.yunxin.log if "search_messages" in r.path]
    assert statuses == [502, 200]


def test_a_refused_appkey_stops_and_is_never_printed(tmp_path: Path, capsys: Any) -> None:
    emulators = EmulatorSet()
    secret = "BC-wrong-secret-appkey-123"
    config = tmp_path / "c.toml"
    with served(emulators, config):
        config.write_text(config.read_text().replace(emulators.goeasy.common_key, secret))
        code = main(["collect", "goeasy", "--config", str(config), "--out",
                     str(tmp_path / "o.jsonl"), "--sender", "s", "--since", "1h",
                     "--conversation", "group:g1"])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 2
    assert "Unauthorized" in printed.out + printed.err
    assert secret not in printed.out + printed.err
    assert not (tmp_path / "o.jsonl").exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal() -> None:
    stream = _Terminal()
    collected = Collected(units_done=2, units_total=5, unit_name="export hours")
    collected.scan.records = 1234
    with _progress(stream) as report:
        report(collected)
    assert "\rexport hours: 2/5 · records 1,234 · matches 0" in stream.getvalue()
