"""Options that every command reading job files shares."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from batchrecall.errors import JobFileError
from batchrecall.intake.encoding import DEFAULT_ENCODING, job_encoding
from batchrecall.models import JobRef

__all__ = ["encoding_option", "job_refs"]


def encoding_option(
    parser: argparse.ArgumentParser, *, default: str, what: str = "the job files"
) -> None:
    parser.add_argument(
        "--encoding",
        type=_encoding_argument,
        metavar="NAME",
        help=f"the text encoding of {what}, e.g. gbk for a Chinese-locale spreadsheet's CSV "
        f"(default: {default})",
    )


def _encoding_argument(text: str) -> str:
    try:
        return job_encoding(text)
    except JobFileError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_JOB_SUFFIXES = (".jsonl", ".ndjson", ".csv")


def job_refs(paths: Sequence[str], encoding: str | None = None) -> list[JobRef]:
    """The job files, refused now (JobFileError) if one cannot be a job file; they are opened
    once, by the pass that reads them."""
    from batchrecall.intake.reader import read_job  # not for collect, which reads no job

    refs = [JobRef(path=Path(p), name=p, encoding=encoding or DEFAULT_ENCODING) for p in paths]
    for ref in refs:
        if ref.path.suffix.lower() not in _JOB_SUFFIXES or not ref.path.is_file():
            read_job(ref.path, job_name=ref.name, encoding=ref.encoding)  # the reader's message
    return refs
