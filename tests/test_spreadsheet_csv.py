"""Job files as spreadsheets save them (SPEC §2): extra empty columns, trailing empty cells,
quoted cells over several lines, and a Chinese-locale Excel's GBK, from files under
tests/fixtures/spreadsheets saved that way."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.errors import JobFileError
from batchrecall.intake.reader import read_job
from batchrecall.models import InvalidRow, Item
from batchrecall.results.manifest import manifest_path, read_manifest

SHEETS = Path(__file__).parent / "fixtures" / "spreadsheets"
Row = Item | InvalidRow


def rows_of(name: str, encoding: str = "utf-8") -> list[Row]:
    return list(read_job(SHEETS / name, job_name=name, encoding=encoding))


def items(rows: list[Row]) -> list[Item]:
    assert all(isinstance(row, Item) for row in rows), [
        row.problem for row in rows if isinstance(row, InvalidRow)
    ]
    return [row for row in rows if isinstance(row, Item)]


def test_excel_extra_empty_columns_and_trailing_cells() -> None:
    read = items(rows_of("excel_utf8_extra_columns.csv"))
    assert [(item.line, item.target, item.params["to"]) for item in read] == [
        (2, "1100000000000000001", "u1"),
        (3, "1100000000000000002", "u2"),
        (5, "1100000000000000003", "u3"),  # the rows of empty cells are skipped, still counted
    ]
    assert read[1].params["chat_type"] == "groupchat"


def test_a_value_under_an_unnamed_column_is_not_dropped(tmp_path: Path) -> None:
    job = tmp_path / "job.csv"
    job.write_bytes(b"vendor,op,msg_id,to,chat_type,,\r\neasemob,recall,11,u1,chat,,oops\r\n")
    (row,) = read_job(job)
    assert isinstance(row, InvalidRow)
    assert row.problem == "row has 7 cells but the header has 5 columns"


def test_a_named_column_after_an_empty_one_is_refused(tmp_path: Path) -> None:
    job = tmp_path / "job.csv"
    job.write_bytes(b"vendor,op,,msg_id,to,chat_type,,\r\n")
    with pytest.raises(JobFileError, match=r"header \(line 1\): column 3 has no name"):
        read_job(job)


def test_quoted_cells_over_several_lines() -> None:
    read = items(rows_of("libreoffice_multiline_cells.csv"))
    assert [(item.line, item.target) for item in read] == [
        (2, "9100000001"),
        (3, "9100000002"),  # lines 3 to 7
        (8, "9100000003"),
        (9, "9100000004"),  # lines 9 and 10
    ]
    assert read[0].params["description"] == "Spam, first wave"
    assert read[1].params["description"] == 'removed by ops\nsee ticket "OPS-12"'
    assert read[1].ref == "INC-7\nnote: second line\n\nand a blank one"
    assert read[3].params["description"] == "two\nlines"
    assert read[3].ref == ""


def test_a_broken_row_spanning_lines_is_named_by_its_first_line(tmp_path: Path) -> None:
    job = tmp_path / "job.csv"
    job.write_bytes(
        b"vendor,op,conversation_id,message_server_id,ref\n"
        b'yunxin,recall,a|1|b,1,"note\nstill the note",extra\n'
        b"yunxin,recall,a|1|b,2,\n"
    )
    first, second = read_job(job)
    assert isinstance(first, InvalidRow)
    assert (first.line, first.problem) == (
        2,
        "row has 6 cells but the header has 5 columns (the row spans lines 2-3)",
    )
    assert isinstance(second, Item)
    assert second.line == 4


def test_an_unclosed_quote_costs_its_own_line_only(tmp_path: Path) -> None:
    job = tmp_path / "job.csv"
    job.write_bytes(
        b"vendor,op,conversation_id,message_server_id,ref\n"
        b'yunxin,recall,a|1|b,1,"never closed\n'
        b"yunxin,recall,a|1|b,2,\n"
        b"yunxin,recall,a|1|b,3,\n"
    )
    rows = list(read_job(job))
    assert [(row.line, type(row).__name__) for row in rows] == [
        (2, "InvalidRow"),
        (3, "Item"),
        (4, "Item"),
    ]
    assert isinstance(rows[0], InvalidRow)
    assert "a quoted cell opened on this line never closes" in rows[0].problem
    assert rows[0].raw == b'yunxin,recall,a|1|b,1,"never closed'


def test_a_long_cell_leaves_the_process_wide_csv_limit_alone(tmp_path: Path) -> None:
    before = csv.field_size_limit()
    stamps = ";".join(str(1_763_690_000_000 + n) for n in range(10_000))  # ~140 KiB
    job = tmp_path / "job.csv"
    job.write_text(f"vendor,op,groupId,messages\ngoeasy,recall,g1,{stamps}\n")
    read = items(list(read_job(job)))
    assert len(read) == 10_000
    assert csv.field_size_limit() == before


def test_gbk_without_encoding_says_how_to_read_it() -> None:
    rows = rows_of("excel_gbk_chinese.csv")
    bad = [row for row in rows if isinstance(row, InvalidRow)]
    assert [row.line for row in bad] == [2, 3, 4]
    assert bad[0].problem == (
        "line is not valid UTF-8 (at byte 36) but reads as GBK: give --encoding gbk "
        "(or save the file as UTF-8)"
    )


def test_gbk_with_encoding() -> None:
    read = items(rows_of("excel_gbk_chinese.csv", encoding="gbk"))
    assert [item.ref for item in read] == ["垃圾广告 第3批", "垃圾广告 第3批", "清理"]
    assert read[0].params["description"] == "撤回：违规广告"
    # the identity does not depend on the file's encoding
    assert read[0].item_key == "yunxin:default:recall:spam%7C1%7Cu1:9200000001:type=2"


@pytest.mark.parametrize("name", ["utf-16", "utf_32", "iso2022_jp", "hz", "rot13", "nope"])
def test_encodings_that_cannot_be_read_line_by_line(tmp_path: Path, name: str) -> None:
    with pytest.raises(JobFileError):
        read_job(SHEETS / "excel_gbk_chinese.csv", encoding=name)


def test_a_utf8_bom_with_another_encoding_is_refused() -> None:
    with pytest.raises(JobFileError, match="byte order mark"):
        list(read_job(SHEETS / "excel_utf8_extra_columns.csv", encoding="gbk"))


def test_validate_takes_encoding(capsys: pytest.CaptureFixture[str]) -> None:
    job = str(SHEETS / "excel_gbk_chinese.csv")
    assert main(["validate", job]) == 1
    assert "give --encoding gbk" in capsys.readouterr().out
    assert main(["validate", job, "--encoding", "gbk"]) == 0
    assert main(["plan", job, "--encoding", "GBK"]) == 0
    with pytest.raises(SystemExit) as caught:
        main(["validate", job, "--encoding", "utf-16"])
    assert caught.value.code == 2


def test_run_records_the_encoding_and_report_reads_the_job_with_it(tmp_path: Path) -> None:
    job = tmp_path / "sheet.csv"
    shutil.copy(SHEETS / "excel_gbk_chinese.csv", job)
    out = tmp_path / "sheet.results.jsonl"
    args = ["run", str(job), "--emulate", "--yes", "--no-progress", "--encoding", "gbk"]
    assert main(args) == 0
    (run,) = read_manifest(manifest_path(out))["runs"]
    assert run["jobs"][0]["encoding"] == "gbk"
    # An item without a row is left to do: report rebuilds it from the job, read as recorded.
    rows = out.read_bytes().splitlines()
    out.write_bytes(b"\n".join(row for row in rows if b"9200000002" not in row) + b"\n")
    left = tmp_path / "left.jsonl"
    assert main(["report", str(out), "--failed-jobs", str(left)]) == 1
    (again,) = [orjson.loads(line) for line in left.read_bytes().splitlines()]
    assert again["message_server_id"] == "9200000002"
    assert again["ref"] == "垃圾广告 第3批"
    assert again["description"] == "违规内容"


def test_emulate_seeds_a_gbk_job_read_with_its_encoding() -> None:
    from batchrecall.emulators.common import EmulatorSettings
    from batchrecall.emulators.seeding import seed_jobs
    from batchrecall.emulators.server import EmulatorSet
    from batchrecall.models import JobRef

    path = SHEETS / "excel_gbk_chinese.csv"
    emulators = EmulatorSet(EmulatorSettings())
    assert sum(seed_jobs(emulators, [JobRef(path=path, name="job", encoding="gbk")]).values()) == 3
    assert sum(seed_jobs(EmulatorSet(EmulatorSettings()), [path]).values()) == 0  # as UTF-8


def test_report_encoding_overrides_what_the_manifest_recorded(tmp_path: Path) -> None:
    job = tmp_path / "sheet.csv"
    shutil.copy(SHEETS / "excel_gbk_chinese.csv", job)
    out = tmp_path / "sheet.results.jsonl"
    assert main(["run", str(job), "--emulate", "--yes", "--no-progress", "--encoding", "gbk"]) == 0
    rows = out.read_bytes().splitlines()
    out.write_bytes(b"\n".join(row for row in rows if b"9200000002" not in row) + b"\n")
    left = tmp_path / "left.jsonl"
    # --encoding wins over the manifest's gbk: the row is rebuilt as latin-1 reads it.
    assert main(["report", str(out), "--failed-jobs", str(left), "--encoding", "latin-1"]) == 1
    (again,) = [orjson.loads(line) for line in left.read_bytes().splitlines()]
    assert again["ref"] == "垃圾广告 第3批".encode("gbk").decode("latin-1")
