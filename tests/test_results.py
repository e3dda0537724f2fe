"""The results file (SPEC §5): columns, appending, torn lines, the resume rule, file naming."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from batchrecall.errors import UsageError
from batchrecall.models import ResultRow, Status
from batchrecall.results.store import (
    FSYNC_INTERVAL_S,
    Format,
    ResultsWriter,
    default_results_path,
    format_of,
    is_done,
    load_resume_index,
    read_rows,
)

# SPEC §5, in this order.
SPEC_COLUMNS = [
    "job",
    "line",
    "index",
    "ref",
    "vendor",
    "app",
    "op",
    "target",
    "item_key",
    "status",
    "error",
    "message",
    "http_status",
    "vendor_code",
    "attempts",
    "call_id",
    "finished_at",
]


def row(
    key: str = "easemob:default:recall:1028442084794698104",
    *,
    status: Status = Status.OK,
    error: str = "",
    message: str = "",
    http_status: int | None = 200,
    line: int = 2,
) -> ResultRow:
    return ResultRow(
        job="jobs/q3.jsonl",
        line=line,
        index=0,
        ref="INC-7",
        vendor="easemob",
        app="default",
        op="recall",
        target=key.rsplit(":", 1)[-1],
        item_key=key,
        status=status,
        error=error,
        message=message,
        http_status=http_status,
        vendor_code="",
        attempts=1,
        call_id="run-000001",
        finished_at="2024-05-01T10:00:00.000Z",
    )


def write(path: Path, fmt: Format, rows: list[ResultRow], *, append: bool = False) -> None:
    writer = ResultsWriter(path, fmt, append=append)
    try:
        writer.write(rows)
    finally:
        writer.close()


def csv_records(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


# Writing


def test_jsonl_row_has_every_column_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out.results.jsonl"
    write(path, "jsonl", [row(message='撤回成功, "ok"\nnext')])
    (line,) = path.read_text(encoding="utf-8").splitlines()
    data = json.loads(line)
    assert list(data) == SPEC_COLUMNS
    assert data["status"] == "ok"
    assert data["line"] == 2
    assert data["http_status"] == 200
    assert data["target"] == "1028442084794698104"
    assert data["message"] == '撤回成功, "ok"\nnext'


def test_jsonl_missing_http_status_is_null(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    write(path, "jsonl", [row(status=Status.SKIPPED, error="duplicate", http_status=None)])
    assert json.loads(path.read_text(encoding="utf-8"))["http_status"] is None


def test_csv_has_header_and_every_column_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out.results.csv"
    message = 'quote " comma , newline\n消息撤回时间超限'
    write(path, "csv", [row(), row("k2", status=Status.FAILED, error="x", message=message)])
    header, first, second = csv_records(path)
    assert header == SPEC_COLUMNS
    assert dict(zip(header, first, strict=True))["status"] == "ok"
    assert dict(zip(header, first, strict=True))["http_status"] == "200"
    assert dict(zip(header, second, strict=True))["message"] == message
    assert dict(zip(header, second, strict=True))["item_key"] == "k2"


def test_csv_missing_http_status_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write(path, "csv", [row(http_status=None)])
    _, values = csv_records(path)
    assert dict(zip(SPEC_COLUMNS, values, strict=True))["http_status"] == ""


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_rows_are_appended(tmp_path: Path, fmt: Format) -> None:
    path = tmp_path / f"out.{fmt}"
    write(path, fmt, [row("k1")])
    write(path, fmt, [row("k2"), row("k3")], append=True)
    rows, torn = read_rows(path)
    assert [r["item_key"] for r in rows] == ["k1", "k2", "k3"]
    assert torn == []
    if fmt == "csv":
        assert path.read_text(encoding="utf-8").count("item_key") == 1, "one header only"


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_without_append_the_file_is_replaced(tmp_path: Path, fmt: Format) -> None:
    path = tmp_path / f"out.{fmt}"
    write(path, fmt, [row("k1")])
    write(path, fmt, [row("k2")])
    rows, _ = read_rows(path)
    assert [r["item_key"] for r in rows] == ["k2"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_append_to_missing_or_empty_file_starts_it(tmp_path: Path, fmt: Format) -> None:
    missing = tmp_path / "sub" / f"new.{fmt}"
    write(missing, fmt, [row("k1")], append=True)
    empty = tmp_path / f"empty.{fmt}"
    empty.touch()
    write(empty, fmt, [row("k1")], append=True)
    for path in (missing, empty):
        rows, torn = read_rows(path)
        assert [r["item_key"] for r in rows] == ["k1"]
        assert torn == []


def test_rows_are_flushed_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    writer = ResultsWriter(path, "jsonl", append=False)
    try:
        writer.write([row("k1")])
        assert len(path.read_text(encoding="utf-8").splitlines()) == 1
        writer.write([row("k2"), row("k3")])
        assert len(path.read_text(encoding="utf-8").splitlines()) == 3
    finally:
        writer.close()


def test_fsync_at_least_every_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    synced: list[int] = []
    monkeypatch.setattr("batchrecall.results.store.os.fsync", synced.append)
    writer = ResultsWriter(tmp_path / "out.jsonl", "jsonl", append=False, clock=lambda: now[0])
    writer.write([row("k1")])
    assert synced == []
    now[0] += FSYNC_INTERVAL_S
    writer.write([row("k2")])
    assert len(synced) == 1
    writer.write([row("k3")])
    assert len(synced) == 1
    writer.close()
    assert len(synced) == 2, "and at close"
    writer.close()
    assert len(synced) == 2


# Torn lines and resume


def test_torn_jsonl_line_is_ignored_and_terminated_on_append(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    write(path, "jsonl", [row("k1"), row("k2", status=Status.FAILED, error="timeout")])
    whole = json.dumps({"item_key": "k2", "status": "ok"})
    with path.open("a", encoding="utf-8") as handle:
        handle.write(whole[: len(whole) // 2])

    index = load_resume_index(path)
    assert index.torn_lines == 1
    assert index.as_dict() == {"k1": ("ok", ""), "k2": ("failed", "timeout")}

    write(path, "jsonl", [row("k3")], append=True)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert json.loads(lines[-2])["item_key"] == "k3"
    index = load_resume_index(path)
    assert index.torn_lines == 1
    assert set(index.as_dict()) == {"k1", "k2", "k3"}


def test_torn_jsonl_line_cut_inside_a_multibyte_character(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    write(path, "jsonl", [row("k1")])
    whole = json.dumps(
        {"item_key": "k2", "status": "ok", "message": "消息撤回时间超限"}, ensure_ascii=False
    )
    with path.open("ab") as handle:
        handle.write(whole.encode()[:-5])
    write(path, "jsonl", [row("k3")], append=True)
    index = load_resume_index(path)
    assert index.torn_lines == 1
    assert set(index.as_dict()) == {"k1", "k3"}


def csv_line(result: ResultRow) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        ["" if v is None else str(v) for v in (getattr(result, c) for c in SPEC_COLUMNS)]
    )
    return buffer.getvalue()


@pytest.mark.parametrize(
    "cut",
    [
        lambda text: text[: text.index(",failed,") + 3],  # inside the status column
        lambda text: text[: text.index("Server") + 3],  # inside a quoted message
        lambda text: text[: text.index("line one\n") + len("line one\n")],  # after a quoted \n
        lambda text: text[: text.index("超") + 1],  # just after a wide character
    ],
    ids=["plain", "open-quote", "quoted-newline", "wide-char"],
)
def test_torn_csv_row_is_ignored_and_terminated_on_append(
    tmp_path: Path, cut: Callable[[str], str]
) -> None:
    path = tmp_path / "out.csv"
    write(path, "csv", [row("k1")])
    torn = csv_line(
        row("k2", status=Status.FAILED, error="timeout", message='Server, "busy"\nline one\n超限')
    )
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(cut(torn))

    index = load_resume_index(path)
    assert index.as_dict() == {"k1": ("ok", "")}
    assert index.torn_lines == 1

    write(path, "csv", [row("k3"), row("k4", message='after, "torn"')], append=True)
    index = load_resume_index(path)
    assert index.as_dict() == {"k1": ("ok", ""), "k3": ("ok", ""), "k4": ("ok", "")}
    assert index.torn_lines == 1


def test_torn_csv_cut_inside_a_multibyte_character(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write(path, "csv", [row("k1")])
    torn = csv_line(row("k2", status=Status.FAILED, error="timeout", message="消息撤回时间超限"))
    with path.open("ab") as handle:
        handle.write(torn.encode()[: torn.encode().index("超".encode()) + 1])
    index = load_resume_index(path)
    assert index.as_dict() == {"k1": ("ok", "")}
    write(path, "csv", [row("k3")], append=True)
    index = load_resume_index(path)
    assert index.as_dict() == {"k1": ("ok", ""), "k3": ("ok", "")}
    assert index.torn_lines == 1


def test_csv_without_item_key_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(UsageError, match="item_key"):
        load_resume_index(path)


def test_jsonl_lines_that_are_not_rows_count_as_torn(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('[1, 2]\n{"item_key": "k1"}\n\n{"item_key": "k2", "status": "ok"}\n')
    index = load_resume_index(path)
    assert index.as_dict() == {"k2": ("ok", "")}
    assert index.torn_lines == 2


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_latest_row_wins(tmp_path: Path, fmt: Format) -> None:
    path = tmp_path / f"out.{fmt}"
    write(
        path,
        fmt,
        [
            row("k1", status=Status.FAILED, error="timeout"),
            row("k2", status=Status.OK),
            row("k1", status=Status.OK),
            row("k2", status=Status.SKIPPED, error="interrupted"),
        ],
    )
    index = load_resume_index(path)
    assert index.as_dict() == {"k1": ("ok", ""), "k2": ("skipped", "interrupted")}
    assert index.is_done("k1")
    assert not index.is_done("k2")
    assert not index.is_done("never-seen")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_duplicate_row_does_not_hide_the_outcome_of_the_item_it_repeats(
    tmp_path: Path, fmt: Format
) -> None:
    path = tmp_path / f"out.{fmt}"
    write(
        path,
        fmt,
        [
            row("k1", status=Status.FAILED, error="timeout"),
            row("k1", status=Status.SKIPPED, error="duplicate", http_status=None),
        ],
    )
    index = load_resume_index(path)
    assert index.as_dict() == {"k1": ("failed", "timeout")}
    assert not index.is_done("k1")


# The SPEC §5 resume rule


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("ok", ""),
        ("not_found", "not-found"),
        ("invalid", "invalid-row"),
        ("failed", "recall-window-exceeded"),
        ("failed", "permission-denied"),
        ("failed", "recipient-not-found"),
        ("failed", "batch-rejected"),
        ("failed", "some-future-code"),
        ("skipped", "duplicate"),
    ],
)
def test_done(status: str, error: str) -> None:
    assert is_done(status, error)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("failed", "vendor-unavailable"),
        ("failed", "timeout"),
        ("failed", "rate-limited"),
        # Lane-stopping errors: the vendor did nothing; resume after fixing the cause.
        ("failed", "auth-failed"),
        ("failed", "service-disabled"),
        ("failed", "quota-exhausted"),
        ("unknown", ""),
        ("unknown", "timeout"),
        ("skipped", "halted"),
        ("skipped", "lane-stopped"),
        ("skipped", "interrupted"),
        ("skipped", ""),
    ],
)
def test_not_done(status: str, error: str) -> None:
    assert not is_done(status, error)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_index_applies_the_rule_to_rows_read_back(tmp_path: Path, fmt: Format) -> None:
    path = tmp_path / f"out.{fmt}"
    write(
        path,
        fmt,
        [
            row("ok", status=Status.OK),
            row("gone", status=Status.NOT_FOUND, error="not-found"),
            row("bad", status=Status.INVALID, error="invalid-row", http_status=None),
            row("late", status=Status.FAILED, error="recall-window-exceeded"),
            row("slow", status=Status.FAILED, error="timeout"),
            row("lost", status=Status.UNKNOWN, error="timeout"),
            row("dup", status=Status.SKIPPED, error="duplicate"),
            row("stop", status=Status.SKIPPED, error="halted"),
        ],
    )
    index = load_resume_index(path)
    done = {key for key in index.as_dict() if index.is_done(key)}
    assert done == {"ok", "gone", "bad", "late"}
    # A duplicate's row alone is no outcome: the item it repeats never got its own row.
    assert not index.is_done("dup")


# File naming and format


def test_default_results_path() -> None:
    assert default_results_path(Path("jobs/q3.jsonl"), "jsonl") == Path("jobs/q3.results.jsonl")
    assert default_results_path(Path("jobs/q3.csv"), "jsonl") == Path("jobs/q3.results.jsonl")
    assert default_results_path(Path("jobs/q3.csv"), "csv") == Path("jobs/q3.results.csv")
    assert default_results_path(Path("a.b.ndjson"), "jsonl") == Path("a.b.results.jsonl")


@pytest.mark.parametrize(
    ("path", "requested", "expected"),
    [
        ("out.csv", None, "csv"),
        ("out.CSV", None, "csv"),
        ("out.csv", "jsonl", "csv"),
        ("out.jsonl", None, "jsonl"),
        ("out.ndjson", None, "jsonl"),
        ("out.results", "csv", "csv"),
        ("out", None, "jsonl"),
        ("out.txt", None, "jsonl"),
    ],
)
def test_format_of(path: str, requested: str | None, expected: str) -> None:
    assert format_of(Path(path), requested) == expected
