"""Reading job files (SPEC §2): formats, encodings, line numbers, CSV cells, streaming."""

from __future__ import annotations

import gc
import os
import threading
import tracemalloc
import warnings
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from batchrecall.errors import JobFileError
from batchrecall.intake.reader import MAX_LINE_BYTES, read_job
from batchrecall.models import InvalidRow, Item

EASEMOB_LINE = (
    b'{"vendor":"easemob","op":"recall","msg_id":"1028442084794698104","to":"u2",'
    b'"chat_type":"chat"}'
)
CSV_HEADER = b"vendor,op,msg_id,to,chat_type,force,ref"
CSV_ROW = b"easemob,recall,1028442084794698104,u2,chat,,T-1"


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def read(tmp_path: Path, name: str, content: bytes) -> list[Item | InvalidRow]:
    return list(read_job(write(tmp_path, name, content)))


def only_item(results: list[Item | InvalidRow]) -> Item:
    (result,) = results
    assert isinstance(result, Item), result
    return result


def only_invalid(results: list[Item | InvalidRow]) -> InvalidRow:
    (result,) = results
    assert isinstance(result, InvalidRow), result
    return result


def lines_of(results: list[Item | InvalidRow]) -> list[tuple[int, str]]:
    return [(result.line, type(result).__name__) for result in results]


# File-level errors, raised when read_job is called


@pytest.mark.parametrize("name", ["job.jsonl", "job.ndjson", "job.JSONL", "job.NdJson"])
def test_jsonl_extensions(tmp_path: Path, name: str) -> None:
    assert only_item(read(tmp_path, name, EASEMOB_LINE + b"\n")).target == "1028442084794698104"


@pytest.mark.parametrize("name", ["job.csv", "job.CSV"])
def test_csv_extensions(tmp_path: Path, name: str) -> None:
    result = only_item(read(tmp_path, name, CSV_HEADER + b"\n" + CSV_ROW + b"\n"))
    assert (result.line, result.ref) == (2, "T-1")


@pytest.mark.parametrize("name", ["job.txt", "job.json", "job", "job.jsonl.bak", "job.tsv"])
def test_unknown_extension(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, EASEMOB_LINE)
    with pytest.raises(JobFileError, match=r"unknown format .*\.jsonl, \.ndjson or \.csv"):
        read_job(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match=r"job file .*nope\.jsonl: no such file"):
        read_job(tmp_path / "nope.jsonl")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(JobFileError, match=r"dir\.jsonl: is a directory"):
        read_job(tmp_path / "dir.jsonl")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.jsonl", EASEMOB_LINE)
    path.chmod(0)
    with pytest.raises(JobFileError, match=r"secret\.jsonl: cannot be opened"):
        read_job(path)


def test_unopenable_file(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match=r"cannot be opened \(File name too long\)"):
        read_job(tmp_path / ("x" * 300 + ".jsonl"))


def test_job_file_error_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(JobFileError) as caught:
        read_job(tmp_path / "nope.csv")
    assert caught.value.code == "job-file-error"


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (b"vendor,op,msg_id,msg_id", r"header \(line 1\): column 'msg_id' appears twice"),
        (b"vendor,op,,to", r"header \(line 1\): column 3 has no name"),
        (b"op,msg_id", r"header \(line 1\) has no 'vendor' column"),
        (b"vendor,msg_id", r"header \(line 1\) has no 'op' column"),
        (b"vendor;op;msg_id", r"has no 'vendor' column; columns must be separated by commas"),
        (b'vendor,"op', r"header \(line 1\) is not valid CSV"),
        (b"vendor,op,\xff", r"header \(line 1\) is not valid UTF-8"),
    ],
)
def test_bad_csv_header(tmp_path: Path, header: bytes, match: str) -> None:
    path = write(tmp_path, "job.csv", header + b"\n" + CSV_ROW + b"\n")
    with pytest.raises(JobFileError, match=match):
        read_job(path)


def test_job_name(tmp_path: Path) -> None:
    path = write(tmp_path, "job.jsonl", EASEMOB_LINE + b"\n{}\n")
    default = list(read_job(path))
    named = list(read_job(path, job_name="jobs/today.jsonl"))
    assert [result.job for result in default] == [str(path), str(path)]
    assert [result.job for result in named] == ["jobs/today.jsonl", "jobs/today.jsonl"]


@pytest.mark.parametrize(
    ("name", "content", "take"),
    [
        ("job.jsonl", EASEMOB_LINE, 0),
        ("job.jsonl", EASEMOB_LINE + b"\n" + EASEMOB_LINE, 1),
        ("job.csv", CSV_HEADER + b"\n" + CSV_ROW, 0),
        ("job.csv", CSV_HEADER + b"\n" + CSV_ROW + b"\n" + CSV_ROW, 1),
    ],
)
def test_file_is_closed_when_the_rows_are_dropped(
    tmp_path: Path, name: str, content: bytes, take: int
) -> None:
    path = write(tmp_path, name, content)
    gc.collect()  # earlier garbage, not ours
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = read_job(path)
        for _ in range(take):
            next(rows)
        del rows
        gc.collect()
    assert [str(w.message) for w in caught if str(path) in str(w.message)] == []


# Empty files


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jsonl", b""),
        ("blank.jsonl", b"\n  \n\t\r\n"),
        ("bom.jsonl", b"\xef\xbb\xbf"),
        ("empty.csv", b""),
        ("blank.csv", b"\r\n\r\n"),
        ("header.csv", CSV_HEADER + b"\n"),
        ("header-blanks.csv", b"\xef\xbb\xbf" + CSV_HEADER + b"\r\n\r\n \r\n"),
    ],
)
def test_empty_job_files_yield_nothing(tmp_path: Path, name: str, content: bytes) -> None:
    assert read(tmp_path, name, content) == []


# Encodings, line endings, blank lines and line numbers


def test_jsonl_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbf" + EASEMOB_LINE + b"\r\n\r\n   \r\n" + EASEMOB_LINE + b"\r\n"
    results = read(tmp_path, "job.jsonl", content)
    assert lines_of(results) == [(1, "Item"), (4, "Item")]


def test_jsonl_last_line_without_newline(tmp_path: Path) -> None:
    results = read(tmp_path, "job.jsonl", EASEMOB_LINE + b"\n" + EASEMOB_LINE)
    assert lines_of(results) == [(1, "Item"), (2, "Item")]


def test_csv_bom_crlf_and_line_numbers(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbf" + CSV_HEADER + b"\r\n" + CSV_ROW + b"\r\n\r\n" + CSV_ROW + b"\r\n"
    results = read(tmp_path, "job.csv", content)
    assert lines_of(results) == [(2, "Item"), (4, "Item")]
    assert isinstance(results[0], Item)
    assert results[0].vendor == "easemob"


def test_csv_blank_lines_before_the_header(tmp_path: Path) -> None:
    results = read(tmp_path, "job.csv", b"\n\n" + CSV_HEADER + b"\n" + CSV_ROW + b"\n")
    assert lines_of(results) == [(4, "Item")]


def test_raw_is_the_line_without_ending_or_bom(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbf" + CSV_HEADER + b"\r\n" + b"easemob,recall,x,u2,chat,,\r\n"
    row = only_invalid(read(tmp_path, "job.csv", content))
    assert row.raw == b"easemob,recall,x,u2,chat,,"
    line = b"\xef\xbb\xbf{broken\r\n"
    assert only_invalid(read(tmp_path, "job.jsonl", line)).raw == b"{broken"


def test_invalid_utf8_line_is_an_invalid_row(tmp_path: Path) -> None:
    bad = b'{"vendor":"easemob","ref":"\xff\xfe"}'
    results = read(tmp_path, "job.jsonl", EASEMOB_LINE + b"\n" + bad + b"\n" + EASEMOB_LINE)
    assert lines_of(results) == [(1, "Item"), (2, "InvalidRow"), (3, "Item")]
    row = results[1]
    assert isinstance(row, InvalidRow)
    assert row.problem == "line is not valid UTF-8 (at byte 28); save the file as UTF-8"
    assert row.raw == bad
    assert (row.vendor, row.op, row.app, row.ref) == ("", "", "", "")


def test_invalid_utf8_csv_row(tmp_path: Path) -> None:
    content = CSV_HEADER + b"\n" + CSV_ROW.replace(b"u2", b"u\xc3") + b"\n"
    row = only_invalid(read(tmp_path, "job.csv", content))
    assert (row.line, row.problem) == (
        2,
        "line is not valid UTF-8 (at byte 37); save the file as UTF-8",
    )


def test_non_ascii_text(tmp_path: Path) -> None:
    line = EASEMOB_LINE.replace(b'"u2"', '"用户二"'.encode())
    assert only_item(read(tmp_path, "job.jsonl", line)).params["to"] == "用户二"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"vendor": "easemob"', "line is not valid JSON: unexpected end of data (column 21)"),
        (b"[1, 2]", "line must be a JSON object {...} (got a list)"),
        (b'"easemob"', "line must be a JSON object {...} (got a string)"),
        (b"42", "line must be a JSON object {...} (got a number)"),
        (b"null", "line must be a JSON object {...} (got null)"),
        (b"true", "line must be a JSON object {...} (got a boolean)"),
    ],
)
def test_broken_json_lines(tmp_path: Path, line: bytes, problem: str) -> None:
    row = only_invalid(read(tmp_path, "job.jsonl", line + b"\n"))
    assert (row.line, row.problem, row.raw) == (1, problem, line)


def test_json_nan_is_not_json(tmp_path: Path) -> None:
    line = EASEMOB_LINE.replace(b'"u2"', b"NaN")
    assert only_invalid(read(tmp_path, "job.jsonl", line)).problem.startswith(
        "line is not valid JSON"
    )


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        (b"9" * 400, "field 'msg_id' must be 1 to 32 digits (got '99999999999999999999999"),
        (b"9" * 5000, "line cannot be read as JSON (Exceeds the limit"),
        (b"1e400", "line cannot be read as JSON (number 1e400 is out of range)"),
    ],
)
def test_numbers_beyond_a_double(tmp_path: Path, number: bytes, problem: str) -> None:
    line = EASEMOB_LINE.replace(b'"1028442084794698104"', number)
    assert only_invalid(read(tmp_path, "job.jsonl", line)).problem.startswith(problem)


def test_over_long_line(tmp_path: Path) -> None:
    long_line = b'{"ref":"' + b"x" * MAX_LINE_BYTES + b'"}'
    content = long_line + b"\n" + EASEMOB_LINE + b"\n"
    results = read(tmp_path, "job.jsonl", content)
    assert lines_of(results) == [(1, "InvalidRow"), (2, "Item")]
    row = results[0]
    assert isinstance(row, InvalidRow)
    assert row.problem == f"line is longer than {MAX_LINE_BYTES} bytes"
    assert len(row.raw) == MAX_LINE_BYTES


@pytest.mark.parametrize("ending", [b"\n", b""])
def test_line_of_exactly_the_limit(tmp_path: Path, ending: bytes) -> None:
    line = EASEMOB_LINE + b" " * (MAX_LINE_BYTES - len(EASEMOB_LINE))
    assert only_item(read(tmp_path, "job.jsonl", line + ending)).line == 1
    too_long = only_invalid(read(tmp_path, "job.jsonl", line + b" " + ending))
    assert too_long.problem == f"line is longer than {MAX_LINE_BYTES} bytes"


# CSV cells


def csv_rows(tmp_path: Path, header: str, *rows: str) -> list[Item | InvalidRow]:
    content = "\n".join((header, *rows)) + "\n"
    return read(tmp_path, "job.csv", content.encode())


def csv_item(tmp_path: Path, header: str, row: str) -> Item:
    return only_item(csv_rows(tmp_path, header, row))


def csv_problem(tmp_path: Path, header: str, row: str) -> str:
    return only_invalid(csv_rows(tmp_path, header, row)).problem


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("0", False),
        ("", False),
    ],
)
def test_csv_booleans(tmp_path: Path, cell: str, expected: bool) -> None:
    result = csv_item(tmp_path, CSV_HEADER.decode(), f"easemob,recall,1,u2,chat,{cell},")
    assert result.params["force"] is expected


def test_csv_bad_boolean(tmp_path: Path) -> None:
    assert csv_problem(tmp_path, CSV_HEADER.decode(), "easemob,recall,1,u2,chat,y,") == (
        "field 'force' must be true/false/1/0/yes/no (got 'y')"
    )


def test_csv_empty_cells_are_absent(tmp_path: Path) -> None:
    header = "vendor,op,app,ref,msg_id,to,chat_type,from,sync_device,conversation_id"
    result = csv_item(tmp_path, header, "easemob,recall,,,7,u2,groupchat,,,")
    assert (result.app, result.ref) == ("default", "")
    assert result.params == {"msg_id": "7", "to": "u2", "chat_type": "groupchat", "force": False}


def test_csv_columns_of_other_vendors(tmp_path: Path) -> None:
    header = "vendor,op,msg_id,to,chat_type,conversation_id,message_server_id"
    results = csv_rows(
        tmp_path,
        header,
        "easemob,recall,7,u2,chat,,",
        "yunxin,recall,,,,a|1|b,9",
        "yunxin,recall,7,,,a|1|b,9",
    )
    assert lines_of(results) == [(2, "Item"), (3, "Item"), (4, "InvalidRow")]
    row = results[2]
    assert isinstance(row, InvalidRow)
    assert row.problem.startswith("unknown field 'msg_id': yunxin recall takes")
    assert (row.vendor, row.op, row.app) == ("yunxin", "recall", "default")


def test_csv_cells_are_kept_exactly(tmp_path: Path) -> None:
    result = csv_item(
        tmp_path, "vendor,op,msg_id,to,chat_type,ref", 'easemob,recall,7," u, 2",chat," r "'
    )
    assert (result.params["to"], result.ref) == (" u, 2", " r ")


@pytest.mark.parametrize(
    "cell",
    [
        '"[1581111111111, ""1582222222222""]"',
        "1581111111111;1582222222222",
        "1581111111111 ; 1582222222222",
    ],
)
def test_csv_timestamp_lists(tmp_path: Path, cell: str) -> None:
    results = csv_rows(tmp_path, "vendor,op,groupId,messages", f"goeasy,recall,g1,{cell}")
    assert [(r.index, r.target) for r in results if isinstance(r, Item)] == [
        (0, "1581111111111"),
        (1, "1582222222222"),
    ]


def test_csv_single_timestamp(tmp_path: Path) -> None:
    result = csv_item(tmp_path, "vendor,op,groupId,messages", "goeasy,recall,g1,1581111111111")
    assert (result.index, result.params["timestamp"]) == (0, 1581111111111)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("1;;2", "field 'messages[1]' must be a positive integer timestamp in ms (got '')"),
        ("1;x", "field 'messages[1]' must be a positive integer timestamp in ms (got 'x')"),
        (
            '"[1, 2.5]"',
            "field 'messages[1]' is a float and may have lost digits; write it as a string",
        ),
        (
            "[1",
            "field 'messages' is not valid JSON (unexpected end of data); "
            "write a JSON array or values separated by ';'",
        ),
        ('"[""a""]"', "field 'messages[0]' must be a positive integer timestamp in ms (got 'a')"),
        ("1.5", "field 'messages' must be a positive integer timestamp in ms (got '1.5')"),
    ],
)
def test_csv_bad_timestamp_lists(tmp_path: Path, cell: str, problem: str) -> None:
    assert (
        csv_problem(tmp_path, "vendor,op,groupId,messages", f"goeasy,recall,g1,{cell}") == problem
    )


def test_csv_list_limit(tmp_path: Path) -> None:
    stamps = ";".join(str(1581111111111 + n) for n in range(10_000))
    rows = csv_rows(tmp_path, "vendor,op,groupId,messages", f"goeasy,recall,g1,{stamps}")
    assert len(rows) == 10_000
    assert all(isinstance(row, Item) for row in rows)
    assert (
        csv_problem(tmp_path, "vendor,op,groupId,messages", f"goeasy,recall,g1,{stamps};1")
        == "field 'messages' must hold 1 to 10000 timestamps (got 10001); split the row"
    )


def test_csv_recaller_json(tmp_path: Path) -> None:
    cell = '"{""id"": ""u1"", ""data"": {""name"": ""W""}}"'
    result = csv_item(tmp_path, "vendor,op,groupId,messages,recaller", f"goeasy,recall,g1,5,{cell}")
    assert result.params["recaller"] == {"id": "u1", "data": {"name": "W"}}
    assert result.batch_key == ("group", "g1", '{"data":{"name":"W"},"id":"u1"}')


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("u1", "field 'recaller' is not valid JSON (unexpected character"),
        ('"[1]"', "field 'recaller' must be an object (got a list)"),
    ],
)
def test_csv_bad_recaller(tmp_path: Path, cell: str, problem: str) -> None:
    header = "vendor,op,groupId,messages,recaller"
    assert csv_problem(tmp_path, header, f"goeasy,recall,g1,5,{cell}").startswith(problem)


def test_csv_yunxin_integers(tmp_path: Path) -> None:
    header = "vendor,op,conversation_id,message_server_id,type,ignore_revoke_time"
    result = csv_item(tmp_path, header, "yunxin,recall,a|1|b,9,1,yes")
    assert (result.params["type"], result.params["ignore_revoke_time"]) == (1, 1)


def test_csv_spreadsheet_float_id(tmp_path: Path) -> None:
    assert csv_problem(tmp_path, CSV_HEADER.decode(), "easemob,recall,1.02844E+18,u2,chat,,") == (
        "field 'msg_id' was written as a float ('1.02844E+18') and may have lost digits; "
        "store the column as text"
    )


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("easemob,recall,1,u2,chat,,,extra", "row has 8 cells but the header has 7 columns"),
        ("easemob,recall,1,u2", "row has 4 cells but the header has 7 columns"),
        (
            'easemob,recall,1,"u2,chat,,',
            "line is not valid CSV (a quoted cell opened on this line never closes "
            "within 1048576 bytes)",
        ),
        (
            'easemob,recall,1,"u"2,chat,,',
            "line is not valid CSV (',' expected after '\"')",
        ),
    ],
)
def test_csv_bad_rows(tmp_path: Path, row: str, problem: str) -> None:
    results = csv_rows(tmp_path, CSV_HEADER.decode(), row, CSV_ROW.decode())
    assert lines_of(results) == [(2, "InvalidRow"), (3, "Item")]
    invalid = results[0]
    assert isinstance(invalid, InvalidRow)
    assert invalid.problem == problem
    assert invalid.raw == row.encode()


def test_csv_rows_of_empty_cells_are_skipped(tmp_path: Path) -> None:
    results = csv_rows(tmp_path, CSV_HEADER.decode(), ",,,,,,", CSV_ROW.decode(), ",,,,,,")
    assert lines_of(results) == [(3, "Item")]


# Streaming


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_first_item_comes_before_the_file_is_complete(tmp_path: Path) -> None:
    """A reader that slurped the file would wait for the writer, which waits for the reader."""
    path = tmp_path / "pipe.jsonl"
    os.mkfifo(path)
    first_read = threading.Event()
    writer_waited: list[bool] = []

    def writer() -> None:
        with path.open("wb") as pipe:
            pipe.write(EASEMOB_LINE + b"\n")
            pipe.flush()
            writer_waited.append(first_read.wait(timeout=10))
            pipe.write(EASEMOB_LINE.replace(b"u2", b"u3") + b"\n")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        rows = read_job(path)
        first = next(rows)
        first_read.set()
        rest = list(rows)
    finally:
        first_read.set()
        # Should read_job fail before opening the pipe, this lets the writer's open return.
        spare = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        thread.join(timeout=20)
        os.close(spare)
    assert writer_waited == [True]
    assert isinstance(first, Item)
    assert [row.line for row in rest] == [2]


def _generated_lines(count: int) -> Iterator[bytes]:
    for number in range(count):
        row = {
            "vendor": "yunxin",
            "op": "recall",
            "conversation_id": f"user{number}|1|peer{number}",
            "message_server_id": str(10**15 + number),
            "ref": f"ticket-{number:08d}-" + "x" * 100,
        }
        yield orjson.dumps(row) + b"\n"


@pytest.mark.parametrize("name", ["big.jsonl", "big.csv"])
def test_memory_does_not_grow_with_file_length(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    count = 25_000
    with path.open("wb") as file:
        if name.endswith(".csv"):
            file.write(b"vendor,op,conversation_id,message_server_id,ref\n")
            for line in _generated_lines(count):
                row = orjson.loads(line)
                file.write(",".join(row.values()).encode() + b"\n")
        else:
            file.writelines(_generated_lines(count))
    size = path.stat().st_size
    assert size > 4_000_000
    tracemalloc.start()
    try:
        seen = 0
        for result in read_job(path):
            assert isinstance(result, Item)
            seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert peak < 1_000_000  # a reader holding the file would peak at its size or more
