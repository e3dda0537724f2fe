"""Command line: argument parsing, the confirmation gate and exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from batchrecall.cli.arguments import build_parser
from batchrecall.cli.guard import run_command
from batchrecall.cli.job_options import job_refs
from batchrecall.errors import ExitCode, JobFileError
from batchrecall.intake.distinct import DistinctKeys
from batchrecall.intake.reader import read_job_keys
from batchrecall.results.phrases import count_phrase

# Commands that log nothing start without the log's imports (structlog, rich): `validate` is
# timed against a bare JSON parser.
_SILENT = frozenset({"validate"})


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(words)
    args.words = words
    # Until a command sets up its own log (run, collect), events go to stderr, secrets redacted.
    if args.command not in _SILENT:
        _configure_logging()
    return run_command(lambda parsed: _handler(parsed.command)(parsed), args)


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        # Every file opened (and a CSV's header read) before a row is checked: one that cannot
        # be read at all is refused before any problem is printed.
        sources = [
            read_job_keys(job.path, job_name=job.name, encoding=job.encoding)
            for job in job_refs(args.jobs, args.encoding)
        ]
    except JobFileError as exc:
        print(f"batchrecall: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    valid = invalid = 0
    seen = DistinctKeys()  # counted at the end: a run's per-key answers cost three times more
    try:
        for source in sources:
            for row in source:
                if isinstance(row, list):
                    valid += len(row)
                    seen.update(row)
                else:
                    invalid += 1
                    print(f"{row.job}:{row.line}: {row.problem}")
        items = seen.count()
    finally:
        seen.close()
    duplicates = valid - items
    print(count_phrase(items, invalid, duplicates))
    return ExitCode.INCOMPLETE if invalid else ExitCode.OK


def _configure_logging() -> None:
    from batchrecall.logs import configure_logging

    configure_logging(level=logging.WARNING)


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    """The command's function, its module imported now: each command loads what it needs."""
    if command == "validate":
        return _cmd_validate
    if command == "collect":
        from batchrecall.cli.collect import cmd_collect

        return cmd_collect
    if command == "emulate":
        from batchrecall.cli.emulate import cmd_emulate

        return cmd_emulate
    from batchrecall.cli import commands

    handler: Callable[[argparse.Namespace], int] = getattr(commands, f"cmd_{command}")
    return handler


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
