"""Answers no vendor documents but real networks give: gateways, dead hosts, echoed secrets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.results.summary import ExitCode
from tests.harness import FAST_RUN, Harness
from tests.test_engine_faults import easemob_rows, yunxin_rows

Answer = Callable[[httpx.Request], httpx.Response | None]


class Intercept(httpx.AsyncBaseTransport):
    """Answers some requests itself; the rest reach the emulators."""

    def __init__(self, inner: httpx.AsyncBaseTransport, answer: Answer) -> None:
        self.inner = inner
        self.answer = answer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = self.answer(request)
        if response is not None:
            return response
        return await self.inner.handle_async_request(request)


def intercept(answer: Answer) -> Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]:
    return lambda inner: Intercept(inner, answer)


def goeasy_rows(n: int) -> list[dict[str, object]]:
    return [
        {"vendor": "goeasy", "op": "recall", "groupId": "g", "messages": [1_763_000_000_000 + i]}
        for i in range(n)
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("rows", [easemob_rows(2), goeasy_rows(2)], ids=["easemob", "goeasy"])
async def test_a_bare_404_is_never_not_found(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    def gateway(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/token"):
            return None
        if "goeasy" in request.url.path:
            return httpx.Response(404, json={"code": 404, "content": "Not Found"})
        return httpx.Response(404, text="<html><body>Not Found</body></html>")

    harness = Harness(tmp_path, wrap_transport=intercept(gateway))
    harness.write_job(rows)
    harness.seed()
    outcome = await harness.run()
    # Easemob's errors carry its own body: a bare 404 is retried, then left to --resume.
    error = "vendor-unavailable" if rows[0]["vendor"] == "easemob" else "vendor-error"
    assert {(r["status"], r["error"]) for r in outcome.rows} == {("failed", error)}
    assert outcome.summary.exit_code() == ExitCode.INCOMPLETE


@pytest.mark.anyio
async def test_an_unreachable_vendor_ends_after_max_attempts(tmp_path: Path) -> None:
    tried: list[str] = []

    def unreachable(request: httpx.Request) -> httpx.Response | None:
        tried.append(request.url.path)
        raise httpx.ConnectError("connection refused", request=request)

    harness = Harness(tmp_path, wrap_transport=intercept(unreachable))
    harness.write_job([*easemob_rows(3), *yunxin_rows(2)])
    outcome = await harness.run(replace(FAST_RUN, max_attempts=3))
    assert len(outcome.rows) == 5
    assert {(r["status"], r["error"], r["attempts"]) for r in outcome.rows} == {
        ("failed", "vendor-unavailable", 0)  # never reached: 0 requests carried them
    }
    # Each call tried exactly max_attempts times: one Easemob call (its token request fails),
    # two Yunxin calls.
    assert Counter(path.endswith("/token") for path in tried) == {True: 3, False: 6}
    assert len(harness.clock.slept) >= 6, "backoff between the tries"


@pytest.mark.anyio
async def test_secrets_echoed_by_a_vendor_never_reach_the_results(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    appkey = next(
        s.reveal()
        for lane in harness.config.lanes.values()
        for n, s in lane.secrets.items()
        if n == "appkey"
    )

    def echo(request: httpx.Request) -> httpx.Response | None:
        if "goeasy" not in request.url.path:
            return None
        return httpx.Response(400, json={"code": 400, "content": f"invalid appkey: {appkey}"})

    harness.wrap_transport = intercept(echo)
    harness.write_job(goeasy_rows(1))
    outcome = await harness.run()
    (row,) = outcome.rows
    assert row["status"] == "failed"
    assert appkey not in harness.out.read_text()
    assert row["message"] == "invalid appkey: ***"


@pytest.mark.anyio
async def test_a_lane_stop_with_deletes_waiting_per_user_exits_3(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    deletes = [
        {
            "vendor": "easemob",
            "op": "delete_conversation",
            "username": "u1",
            "channel": f"peer-{i}",
            "type": "chat",
            "delete_roam": True,
        }
        for i in range(3)
    ]
    harness.write_job([*deletes, *easemob_rows(1)])
    harness.seed()
    harness.emulators.easemob.state.recall_service_enabled = False
    outcome = await harness.run(replace(FAST_RUN, concurrency=1))
    assert outcome.summary.exit_code() == ExitCode.HALTED
    assert outcome.summary.stop_reason == ""
    counts = Counter((r["status"], r["error"]) for r in outcome.rows)
    assert sum(counts.values()) == 4
    assert counts[("failed", "service-disabled")] >= 1
    assert not [r for r in outcome.rows if r["error"] == "interrupted"]


def test_csv_results_under_any_name_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.jsonl"
    job.write_text('{"vendor":"easemob","op":"recall","msg_id":"7","to":"u","chat_type":"chat"}\n')
    out = tmp_path / "results.txt"
    args = ["run", str(job), "--emulate", "--yes", "--no-progress", "--out", str(out)]
    assert main([*args, "--format", "csv"]) == 0
    assert main([*args, "--resume"]) == 0  # the file's own format is read back: nothing resent
    assert out.read_text().count("\n") == 2  # header and the one row
    assert "1 already done in the results file" in capsys.readouterr().out
    assert main([*args, "--overwrite", "--format", "jsonl", "--out", str(tmp_path / "x.csv")]) == 2


def test_failed_jobs_as_csv_is_a_valid_job_file(tmp_path: Path) -> None:
    job = tmp_path / "job.jsonl"
    job.write_text(
        '{"vendor":"goeasy","op":"recall","groupId":"g","messages":[1,2],"recaller":{"id":"m"}}\n'
        '{"vendor":"yunxin","op":"delete_message","conversation_id":"a|1|b",'
        '"message_server_id":"9"}\n'
    )
    results = tmp_path / "job.results.jsonl"
    rows = [
        (1, 0, "goeasy:default:recall:group:g:1", "goeasy"),
        (1, 1, "goeasy:default:recall:group:g:2", "goeasy"),
        (2, 0, "yunxin:default:delete_message:a%7C1%7Cb:9", "yunxin"),
    ]
    results.write_bytes(
        b"".join(
            orjson.dumps(
                {"job": str(job), "line": line, "index": i, "item_key": key, "vendor": vendor,
                 "app": "default", "status": "skipped", "error": "interrupted"}
            ) + b"\n"
            for line, i, key, vendor in rows
        )
    )  # fmt: skip
    left = tmp_path / "left.csv"
    assert main(["report", str(results), "--failed-jobs", str(left)]) == 1
    assert main(["validate", str(left)]) == 0
    assert left.read_text().count("\n") == 4  # header and three items


def test_the_resume_command_repeats_every_flag(tmp_path: Path) -> None:
    from batchrecall.cli.arguments import build_parser
    from batchrecall.cli.commands import _resume_command

    words = ["run", "a.jsonl", "--emulate", "--rate", "yunxin=7", "--max-attempts", "2",
             "--overwrite", "--no-progress"]  # fmt: skip
    args = build_parser().parse_args(words)
    args.words = words
    command = _resume_command(args, tmp_path / "a.results.jsonl")
    assert command == (
        "batchrecall run a.jsonl --emulate --rate yunxin=7 --max-attempts 2 --no-progress "
        f"--resume --out {tmp_path / 'a.results.jsonl'} --yes"
    )
