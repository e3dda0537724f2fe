"""`collect easemob --export FILE...`: downloaded Easemob history exports (gzip or plain, one
record a line or pretty-printed objects back to back) -> a job file of the sender's messages in
the window, each once, with a manifest; bad input is named, never fatal to what was read."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.collect.export_file import ExportScan, scan_export
from batchrecall.collect.times import parse_moment
from batchrecall.errors import UsageError
from batchrecall.results.manifest import manifest_path

T0 = 1_764_754_800_000  # 2025-12-03T09:40:00Z
SINCE = "2025-12-03T09:40Z"


def record(n: int, sender: str, *, chat_type: str = "chat", text: str = "hello") -> dict[str, Any]:
    """An export record in the documented shape (research/history-apis §1.2)."""
    to = f"group-{n % 3}" if chat_type == "groupchat" else f"victim-{n % 4}"
    return {
        "msg_id": str(1_400_000_000_000_000_000 + n), "timestamp": T0 + n * 60_000,
        "direction": "outgoing", "to": "XXXX", "from": "XXXX", "chat_type": chat_type,
        "payload": {"bodies": [{"msg": text, "type": "txt"}], "ext": {"k": sender},
                    "from": sender, "to": to},
    }  # fmt: skip


def records() -> list[dict[str, Any]]:
    out = []
    for n in range(120):
        sender = "spammer-7" if n % 10 == 0 else ("spammer-8" if n % 25 == 1 else f"user-{n}")
        out.append(record(n, sender, chat_type="groupchat" if n % 20 == 0 else "chat",
                          text="buy now" if n % 30 == 0 else "hello"))  # fmt: skip
    out.append(record(0, "spammer-7", chat_type="groupchat", text="buy now"))  # the vendor's repeat
    # a receiver named like the sender, and a text naming them: not theirs
    out.append(record(200, "user-x") | {"payload": {"from": "user-x", "to": "spammer-7"}})
    return out


def write_export(path: Path, rows: list[dict[str, Any]], *, pretty: bool = False) -> Path:
    text = b"".join(
        orjson.dumps(r, option=orjson.OPT_INDENT_2 if pretty else 0) + b"\n" for r in rows
    )
    path.write_bytes(gzip.compress(text) if path.suffix == ".gz" else text)
    return path


def collect(tmp_path: Path, *args: str) -> int:
    return main(["collect", "easemob", *args])


def job_rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_senders_messages_in_the_window_each_once(tmp_path: Path) -> None:
    export = write_export(tmp_path / "2025120317.gz", records())
    out = tmp_path / "spam.jsonl"
    code = collect(
        tmp_path, "--export", str(export), "--sender", "spammer-7", "--since", SINCE,
        "--until", "2025-12-03T11:00Z", "--ref", "INC-9", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    rows = job_rows(out)
    # spammer-7 sent every 10th message; 11:00Z is minute 80: messages 0..70, minute 80 excluded
    assert [r["msg_id"] for r in rows] == [
        str(1_400_000_000_000_000_000 + n) for n in range(0, 80, 10)
    ]
    assert rows[0] == {
        "vendor": "easemob", "op": "recall", "msg_id": "1400000000000000000", "to": "group-0",
        "chat_type": "groupchat", "from": "spammer-7", "ref": "INC-9", "sent_at": T0,
    }  # fmt: skip
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert manifest["found"]["items"] == 8
    assert manifest["found"]["duplicates"] == 1
    assert manifest["scan"]["records"] == 122
    assert manifest["job"]["rows"] == 8
    assert manifest["query"]["senders"] == ["spammer-7"]
    import hashlib

    assert manifest["job"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.parametrize("pretty", [False, True])
@pytest.mark.parametrize("name", ["export.gz", "export.json"])
def test_gzip_or_plain_lines_or_pretty_printed(tmp_path: Path, name: str, pretty: bool) -> None:
    export = write_export(tmp_path / name, records(), pretty=pretty)
    out = tmp_path / "spam.csv"
    code = collect(
        tmp_path, "--export", str(export), "--sender", "spammer-7", "spammer-8",
        "--since", SINCE, "--out", str(out),
    )  # fmt: skip
    assert code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "vendor,op,app,msg_id,to,chat_type,from,ref,sent_at"
    assert len(lines) - 1 == 12 + 5  # spammer-7 every 10th of 120, spammer-8 n % 25 == 1
    assert main(["validate", str(out)]) == 0


def test_filters(tmp_path: Path) -> None:
    export = write_export(tmp_path / "e.gz", records())
    out = tmp_path / "f.jsonl"
    base = ["--export", str(export), "--sender", "spammer-7", "--since", SINCE, "--out", str(out)]
    assert collect(tmp_path, *base, "--chat-type", "groupchat") == 0
    assert {r["chat_type"] for r in job_rows(out)} == {"groupchat"}
    assert len(job_rows(out)) == 6
    assert collect(tmp_path, *base, "--contains", "buy") == 0
    assert [r["msg_id"][-2:] for r in job_rows(out)] == ["00", "30", "60", "90"]
    assert collect(tmp_path, *base, "--conversation", "victim-2") == 0
    assert {r["to"] for r in job_rows(out)} == {"victim-2"}
    assert collect(tmp_path, *base, "--max-items", "3") == 0
    assert len(job_rows(out)) == 3


def test_nothing_matched_writes_no_file(tmp_path: Path) -> None:
    export = write_export(tmp_path / "e.gz", records())
    out = tmp_path / "none.jsonl"
    code = collect(tmp_path, "--export", str(export), "--sender", "nobody", "--since", SINCE,
                   "--out", str(out))  # fmt: skip
    assert code == 1
    assert not out.exists()
    assert list(tmp_path.glob(".none.jsonl.*")) == []  # nor a temporary one


def test_a_cut_gzip_is_an_error_that_keeps_what_came_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in records() * 50))
    export = tmp_path / "cut.gz"
    export.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "cut.jsonl"
    code = collect(tmp_path, "--export", str(export), "--sender", "spammer-7", "--since", SINCE,
                   "--out", str(out))  # fmt: skip
    assert code == 2
    assert f"export {export}: the gzip file is cut short" in capsys.readouterr().err
    kept = job_rows(out)
    assert 0 < len(kept) <= 12
    assert orjson.loads(manifest_path(out).read_bytes())["error"].startswith(f"export {export}")


def test_malformed_records_are_skipped_counted_and_the_first_five_named(tmp_path: Path) -> None:
    good = [orjson.dumps(r) for r in records()]
    bad = [b'{"msg_id": "1", "payload": {"from": "spammer-7"', b"[1, 2]"]
    bad += [orjson.dumps(record(n, "spammer-7") | {"msg_id": "X-1"}) for n in range(5)]
    export = tmp_path / "e.json"
    export.write_bytes(b"\n".join([*good[:3], *bad, *good[3:]]) + b"\n")
    scan = ExportScan()
    found = list(scan_export(export, needles=(b'"spammer-7"',), scan=scan))
    assert scan.records == len(good) + len(bad)
    assert len(found) == 14 + 5  # every line naming spammer-7 that parsed (one is cut)
    out = tmp_path / "o.jsonl"
    assert collect(tmp_path, "--export", str(export), "--sender", "spammer-7", "--since", SINCE,
                   "--out", str(out)) == 0  # fmt: skip
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert manifest["scan"]["malformed"] == 6
    assert len(manifest["scan"]["malformed_first"]) == 5
    assert (
        manifest["scan"]["malformed_first"][0] == f"{export}:4: not JSON (unexpected end of data)"
    )


def test_an_operators_own_job_file_is_never_overwritten(tmp_path: Path) -> None:
    export = write_export(tmp_path / "e.gz", records())
    out = tmp_path / "mine.jsonl"
    out.write_text('{"vendor": "easemob"}\n')
    args = ["--export", str(export), "--sender", "spammer-7", "--since", SINCE, "--out", str(out)]
    assert collect(tmp_path, *args) == 2
    assert out.read_text() == '{"vendor": "easemob"}\n'
    out.unlink()
    assert collect(tmp_path, *args) == 0
    assert collect(tmp_path, *args) == 0  # a collected job file may be collected again


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T10:00Z", 1_764_756_000_000 + 365 * 86_400_000),
        ("2026-12-03T18:00+08:00", 1_764_756_000_000 + 365 * 86_400_000),
        ("90m", 10_000_000_000 - 90 * 60_000),
        ("3d", 10_000_000_000 - 3 * 86_400_000),
    ],
)
def test_times(text: str, expected: int) -> None:
    assert parse_moment(text, now_ms=10_000_000_000, option="--since") == expected


@pytest.mark.parametrize("text", ["2026-12-03T10:00", "yesterday", "5w", ""])
def test_bad_times_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--since"):
        parse_moment(text, now_ms=0, option="--since")


def test_bad_options_exit_2(tmp_path: Path) -> None:
    export = str(write_export(tmp_path / "e.gz", records()))
    assert main(["collect", "easemob", "--export", export, "--since", SINCE]) == 2  # no sender
    assert main(["collect", "easemob", "--export", export, "--sender", "a", "--since", "x"]) == 2
    assert main(["collect", "nope", "--export", export, "--sender", "a", "--since", SINCE]) == 2
    until_first = ["--sender", "a", "--since", SINCE, "--until", "2025-12-03T09:00Z"]
    assert main(["collect", "easemob", "--export", export, *until_first]) == 2


def test_a_senders_file_in_another_encoding(tmp_path: Path) -> None:
    export = write_export(tmp_path / "e.gz", [record(n, "垃圾用户") for n in range(3)])
    senders = tmp_path / "senders.txt"
    senders.write_bytes("垃圾用户\n".encode("gbk"))
    out = tmp_path / "o.jsonl"
    args = ["--export", str(export), "--senders-file", str(senders), "--since", SINCE]
    assert collect(tmp_path, *args, "--out", str(out)) == 2  # not UTF-8: said, nothing read
    assert collect(tmp_path, *args, "--out", str(out), "--encoding", "gbk") == 0
    assert {row["from"] for row in job_rows(out)} == {"垃圾用户"}


def test_a_sender_id_written_with_escapes_still_matches_and_counts_stay_right(
    tmp_path: Path,
) -> None:
    # Lines are searched for the id's bytes; a line with an escape is parsed whatever it holds,
    # since JSON may write any character of the id as \uXXXX.
    plain = [orjson.dumps(record(n, f"user-{n}")) for n in range(20_000)]  # several blocks
    escaped = orjson.dumps(record(20_001, "spammer-7")).replace(
        b'"spammer-7"', b'"spammer\\u002d7"'
    )
    assert b'"spammer-7"' not in escaped
    broken_escape = b'{"msg_id": "1", "payload": {"from": "a\\u0062", "to": "x"'  # cut, escaped
    broken_plain = b'{"msg_id": "2", "payload": {"from": "someone"'  # cut, names no sender
    lines = [*plain[:15_000], escaped, broken_escape, broken_plain, *plain[15_000:]]
    export = tmp_path / "e.gz"
    export.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    out = tmp_path / "o.jsonl"
    assert collect(tmp_path, "--export", str(export), "--sender", "spammer-7", "--since", SINCE,
                   "--out", str(out)) == 0  # fmt: skip
    rows = job_rows(out)
    assert [row["msg_id"] for row in rows] == [str(1_400_000_000_000_000_000 + 20_001)]
    assert rows[0]["from"] == "spammer-7"
    manifest = orjson.loads(manifest_path(out).read_bytes())
    assert manifest["scan"]["records"] == len(lines)
    # the escaped line is looked at; the plain broken one names no sender and is passed over
    assert manifest["scan"]["malformed"] == 1
    assert manifest["scan"]["malformed_first"] == [
        f"{export}:15002: not JSON (unexpected end of data)"
    ]


def test_collect_starts_without_the_run_modules(tmp_path: Path) -> None:
    export = write_export(tmp_path / "e.gz", records())
    out = tmp_path / "o.jsonl"
    script = (
        "import sys\n"
        "from batchrecall.cli.entry import main\n"
        f"code = main(['collect', 'easemob', '--export', {str(export)!r}, '--sender', "
        f"'spammer-7', '--since', {SINCE!r}, '--out', {str(out)!r}])\n"
        "heavy = ('anyio', 'httpx', 'aiohttp', 'rich', 'structlog', 'batchrecall.run', "
        "'batchrecall.intake.reader', 'batchrecall.config')\n"
        "print(code, sorted(name for name in heavy if name in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "0 []"
    assert len(job_rows(out)) == 12


def test_collect_through_the_entry_point_keeps_the_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from batchrecall.cli.entry import main as entry

    assert entry(["collect", "easemob", "--sender", "a", "--since", "nonsense"]) == 2
    assert "batchrecall: " in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad_option:
        entry(["collect", "easemob", "--no-such-option"])
    assert bad_option.value.code == 2
