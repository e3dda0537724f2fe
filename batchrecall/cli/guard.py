"""A command's run, its errors turned into exit codes: a usage error, an interrupt, a closed pipe
and a bug each end the same way whatever the command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from batchrecall.errors import ExitCode, UsageError
from batchrecall.redact import redact

__all__ = ["run_command"]


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except UsageError as exc:
        print(f"batchrecall: {redact(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("\nbatchrecall: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`| head`): nothing more to say to it, and no
        # traceback. What was done stays done; the exit code says not everything was shown.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.INCOMPLETE
    except Exception as exc:  # a bug: say so, keep the traceback, and exit with its own code
        _log_bug(exc)
        return ExitCode.INTERNAL


def _log_bug(exc: BaseException) -> None:
    import logging

    import structlog

    from batchrecall.logs import configure_logging

    leaf: BaseException = exc
    while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
        leaf = leaf.exceptions[0]  # the task group's wrapping says nothing
    if not structlog.is_configured():  # a command that logs nothing: stderr, secrets redacted
        configure_logging(level=logging.WARNING)
    structlog.get_logger("batchrecall").exception(
        "batchrecall.internal_error", error=leaf.__class__.__name__
    )
    print(
        f"batchrecall: internal error ({leaf.__class__.__name__}); this is a bug, "
        "the traceback is in the log. Rows written so far are kept: --resume continues.",
        file=sys.stderr,
    )
