"""structlog set-up: events to stderr or a file, secrets masked by a processor."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog

from batchrecall.redact import redact_processor


def _orjson_dumps(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(
    *, fmt: str | None = None, stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """Console output on a terminal, JSON lines elsewhere (or as `fmt` says)."""
    out = stream if stream is not None else sys.stderr
    if fmt is None:
        fmt = "console" if out.isatty() else "json"
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
