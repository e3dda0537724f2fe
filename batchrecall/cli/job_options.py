"""Options that every command reading job files shares."""

from __future__ import annotations

import argparse

from batchrecall.errors import JobFileError
from batchrecall.intake.encoding import job_encoding

__all__ = ["encoding_option"]


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
