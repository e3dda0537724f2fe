"""`batchrecall collect`: the command line of finding what to take back (SPEC §8)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from batchrecall.cli.job_options import encoding_option
from batchrecall.errors import ExitCode, UsageError
from batchrecall.models import Vendor

_EPILOG = """\
examples:
  batchrecall collect easemob --export 2026120309.gz 2026120310.gz --sender spammer-7 \\
      --since 2026-12-03T09:40+08:00 --out jobs/spam.jsonl
  batchrecall collect yunxin --sender spammer-7 --since 6h --config batchrecall.toml
  batchrecall collect rongcloud --sender spammer-7 --since 3h --config batchrecall.toml
  batchrecall plan jobs/spam.jsonl

rehearsal: batchrecall collect yunxin --sender spammer-7 --since 1h --emulate --seed JOB
  (in process), or batchrecall emulate --seed JOB --write-config P, then collect ... --config P

exit codes: 0 rows written, 1 nothing matched or a sender the vendor does not know (no file
written), 2 bad options, or an export or history call that failed (the rows found before it are
written)
"""
_TOP = 10

# The vendors whose history sources collect reads (a plugin vendor offers none).
_COLLECTS = (Vendor.EASEMOB, Vendor.GOEASY, Vendor.YUNXIN, Vendor.TENCENT, Vendor.RONGCLOUD)


def add_collect_parser(sub: Any) -> None:
    collect = sub.add_parser(
        "collect",
        help="find a sender's messages in the vendor's history and write a job file",
        description="Find what to take back: the messages of these senders in this time "
        "window, from the vendor's history, as a job file that validate, plan and run take.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    collect.add_argument("target", metavar="VENDOR[.APP]", help="e.g. easemob or easemob.eu")
    collect.add_argument(
        "--sender", action="append", default=[], metavar="USER", nargs="+",
        help="whose messages (repeatable; at least one, or --senders-file)",
    )  # fmt: skip
    collect.add_argument("--senders-file", metavar="P", help="one user id a line")
    encoding_option(collect, default="utf-8, with or without BOM", what="--senders-file")
    collect.add_argument(
        "--since", metavar="T",
        help="from this time: ISO 8601 with its offset (2026-12-03T09:40+08:00) or a span back "
        "from now (90m, 2h, 3d)",
    )  # fmt: skip
    collect.add_argument("--until", metavar="T", help="up to this time (default: now)")
    collect.add_argument(
        "--conversation", action="append", default=[], metavar="ID", nargs="+",
        help="only these conversations (Easemob: the receiver, group or chat room id; "
        "Yunxin: owner|type|other, read from each one's history; GoEasy: group:ID or "
        "USER_A:USER_B; Tencent: user:PEER or group:ID, read from each one's history instead "
        "of the hourly export; RongCloud: the targetId)",
    )  # fmt: skip
    collect.add_argument("--chat-type", choices=("chat", "groupchat", "chatroom"))
    collect.add_argument("--contains", metavar="TEXT", help="only text messages holding TEXT")
    collect.add_argument(
        "--export", nargs="+", default=[], metavar="FILE",
        help="export files already downloaded (gzip or plain): Easemob's hourly export, "
        "Tencent's hourly message records, RongCloud's hourly history log",
    )  # fmt: skip
    collect.add_argument("--op", choices=("recall", "delete_message"), default="recall")
    collect.add_argument("--ref", help="the rows' ref (default: collect-<time>)")
    collect.add_argument(
        "--out", metavar="JOB",
        help="the job file (JSONL; CSV for .csv) (default: collect-<vendor>-<time>.jsonl)",
    )  # fmt: skip
    collect.add_argument("--max-items", type=int, metavar="N", help="stop after N items")
    collect.add_argument("--dry-run", action="store_true", help="count; write nothing")
    collect.add_argument(
        "--idle-before", metavar="T",
        help="retention: delete_conversation rows for the --account conversations whose last "
        "message is older than T (Yunxin)",
    )  # fmt: skip
    collect.add_argument(
        "--account", action="append", default=[], metavar="USER", nargs="+",
        help="with --idle-before: whose conversations (repeatable)",
    )  # fmt: skip
    collect.add_argument("--config", metavar="P", help="the config with the vendor's lane")
    collect.add_argument(
        "--operator", metavar="USER",
        help="Yunxin: search this account's conversations for up to 5 senders a call "
        "(default: each sender searches its own)",
    )  # fmt: skip
    collect.add_argument(
        "--emulate", action="store_true",
        help="rehearse: collect from the built-in emulators in this process (no config, no "
        "network), which hold the messages of the --seed job files, sent just now",
    )  # fmt: skip
    collect.add_argument(
        "--seed", action="append", default=[], metavar="JOB", nargs="+",
        help="with --emulate: the job files whose messages and conversations the emulators hold",
    )  # fmt: skip


def collect_main(words: list[str]) -> int:
    """`batchrecall collect ...` on collect's own modules (the entry point sends it here)."""
    from batchrecall.cli.guard import run_command

    parser = argparse.ArgumentParser(prog="batchrecall")
    add_collect_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(words)
    args.words = words
    return run_command(cmd_collect, args)


def cmd_collect(args: argparse.Namespace, *, now_ms: int | None = None) -> int:
    from batchrecall.collect.from_exports import collect_exports
    from batchrecall.collect.job_output import CSV_COLUMNS, JobFileWriter
    from batchrecall.collect.manifest import existing_job_is_ours, write_collect_manifest
    from batchrecall.collect.query import Query
    from batchrecall.collect.times import parse_moment, utc_text

    _check_emulate(args)
    # The emulators are seeded first: their messages, "sent just now", are then before `now`.
    lanes = _history_lanes(args) if args.emulate else None
    now = round(time.time() * 1000) if now_ms is None else now_ms
    vendor, _, app = args.target.partition(".")
    if vendor not in _COLLECTS:
        raise UsageError(f"collect: unknown vendor {vendor!r}; use one of {', '.join(_COLLECTS)}")
    if args.max_items is not None and args.max_items < 1:
        raise UsageError("collect: --max-items must be at least 1")
    stamp = utc_text(now)[:19].replace("-", "").replace(":", "")
    idle = args.idle_before is not None
    if idle:
        accounts = _check_idle(args, vendor)
        senders, since = accounts, 0
        until: int | None = parse_moment(args.idle_before, now_ms=now, option="--idle-before")
        op = "delete_conversation"
    else:
        if args.account:
            raise UsageError("collect: --account goes with --idle-before (a retention run)")
        if not args.since:
            raise UsageError(
                "collect: --since is required (or --idle-before T --account USER... for a "
                "retention run)"
            )
        senders = _senders(args)
        since = parse_moment(args.since, now_ms=now, option="--since")
        until = parse_moment(args.until, now_ms=now, option="--until") if args.until else None
        if until is not None and until <= since:
            raise UsageError("collect: --until must be later than --since")
        _check_source(args, vendor)
        op = args.op
    query = Query(
        vendor=Vendor(vendor),
        app=app or "default",
        senders=senders,
        since_ms=since,
        until_ms=until,
        ref=args.ref or f"collect-{stamp}Z",
        op=op,
        conversations=tuple(c for group in args.conversation for c in group),
        chat_type=args.chat_type,
        contains=args.contains,
        max_items=args.max_items,
    )
    out = Path(args.out or f"collect-{vendor}-{stamp}Z.jsonl")
    if not args.dry_run and out.exists() and not existing_job_is_ours(out):
        raise UsageError(
            f"collect: {out} exists and was not written by collect; choose another --out"
        )
    config, transport = lanes or _history_lanes(args)
    writer = None if args.dry_run else JobFileWriter(out, CSV_COLUMNS[vendor])
    try:
        if args.export:
            outcome = collect_exports([Path(p) for p in args.export], query, writer)
        else:
            outcome = _from_history(args, query, (config, transport), writer, now)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    found = outcome.found
    manifest = None
    if outcome.unknown_senders:
        if writer is not None:
            writer.abort()
        _print_summary(outcome, sys.stdout)
        print(
            f"batchrecall: the vendor does not know sender(s) {', '.join(outcome.unknown_senders)}"
            "; check the ids: no job file was written",
            file=sys.stderr,
        )
        return ExitCode.INCOMPLETE
    if writer is not None and found.items:
        writer.commit()  # before anything is printed: a closed pipe must not lose the file
        manifest = write_collect_manifest(out, query, outcome, writer, argv=args.words)
    elif writer is not None:
        writer.abort()
    stream = sys.stdout
    _print_summary(outcome, stream)
    if outcome.error:
        print(f"batchrecall: {outcome.error}", file=sys.stderr)
    if writer is None:
        print("Dry run: nothing was written.", file=stream)
    elif manifest is not None:
        print(f"Wrote {found.items:,} rows to {out} (sha256 {writer.sha256[:16]}…)", file=stream)
        print(f"Manifest: {manifest}", file=stream)
        print(f"Next: batchrecall plan {out}", file=stream)
    if outcome.error:
        return ExitCode.USAGE
    if found.items == 0:
        print("Nothing matched: no job file was written.", file=stream)
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def _check_tencent_conversations(conversations: list[str]) -> None:
    """Without --conversation Tencent's hourly export is read; with it, each conversation's
    history (user:PEER or group:GROUP_ID)."""
    from batchrecall.collect.from_tencent import conversation_problem

    for conversation in conversations:
        if problem := conversation_problem(conversation):
            raise UsageError(f"collect: {problem}")


def _check_idle(args: argparse.Namespace, vendor: str) -> tuple[str, ...]:
    """A retention run's accounts, once its options fit (SPEC §8)."""
    if vendor == Vendor.EASEMOB:
        raise UsageError(
            "collect: --idle-before is not supported for Easemob: its conversation list "
            "(GET /{org}/{app}/user/{username}/user_channels) appears only in the rate table, "
            "the documents give neither its parameters nor its answer"
        )
    if vendor == Vendor.GOEASY:
        raise UsageError("collect: --idle-before is not supported for GoEasy: it has no REST "
                         "conversation list")  # fmt: skip
    if vendor == Vendor.RONGCLOUD:
        raise UsageError("collect: --idle-before is not supported for RongCloud: its server "
                         "conversation list was not found in its documents")  # fmt: skip
    given = [name for name, value in (
        ("--sender", args.sender), ("--senders-file", args.senders_file),
        ("--since", args.since), ("--until", args.until), ("--conversation", args.conversation),
        ("--export", args.export), ("--contains", args.contains),
        ("--chat-type", args.chat_type), ("--operator", args.operator)) if value]  # fmt: skip
    if given:
        raise UsageError(f"collect: --idle-before does not take {', '.join(given)}")
    accounts = tuple(dict.fromkeys(a for group in args.account for a in group if a))
    if not accounts:
        raise UsageError("collect: --idle-before needs --account USER... (whose conversations)")
    return accounts


def _check_source(args: argparse.Namespace, vendor: str) -> None:
    """The options each source takes (SPEC §8); UsageError naming the one that does not fit."""
    if args.export and vendor not in (Vendor.EASEMOB, Vendor.TENCENT, Vendor.RONGCLOUD):
        raise UsageError(
            "collect: --export reads the hourly exports of Easemob, Tencent and RongCloud only"
        )
    recall_only = (Vendor.EASEMOB, Vendor.GOEASY, Vendor.TENCENT, Vendor.RONGCLOUD)
    if vendor in recall_only and args.op != "recall":
        raise UsageError(f"collect: {vendor}'s messages are taken back with --op recall")
    if vendor != Vendor.EASEMOB and args.chat_type:
        raise UsageError("collect: --chat-type is Easemob's (chat, groupchat, chatroom)")
    if args.operator is not None and (vendor != Vendor.YUNXIN or args.conversation):
        raise UsageError("collect: --operator is for a Yunxin search (without --conversation)")
    conversations = [c for group in args.conversation for c in group]
    if vendor == Vendor.GOEASY:
        from batchrecall.collect.from_goeasy import conversation_fields

        if not conversations:
            raise UsageError(
                "collect: GoEasy has no search by sender; name the conversations to read "
                "(--conversation group:ID or USER_A:USER_B)"
            )
        for conversation in conversations:
            if conversation_fields(conversation) is None:
                raise UsageError(
                    f"collect: --conversation {conversation!r}: a GoEasy conversation is "
                    "group:ID or USER_A:USER_B"
                )
    if vendor == Vendor.TENCENT:
        _check_tencent_conversations(conversations)
    if vendor == Vendor.RONGCLOUD and args.contains is not None:
        raise UsageError(
            "collect: --contains is not supported for RongCloud: the history log's content "
            "field is not documented"
        )
    if vendor == Vendor.YUNXIN:
        from batchrecall.collect.from_yunxin import conversation_problem

        for conversation in conversations:
            if problem := conversation_problem(conversation):
                raise UsageError(f"collect: {problem}")


def _check_emulate(args: argparse.Namespace) -> None:
    """`--emulate` reads the in-process emulators, which hold what `--seed` names (nothing
    without it: a collect that finds nothing)."""
    if args.seed and not args.emulate:
        raise UsageError("collect: --seed goes with --emulate (the emulators' messages)")
    if not args.emulate:
        return
    if args.export:
        raise UsageError("collect: --emulate reads the emulators' history, --export reads "
                         "files: give one of them")  # fmt: skip
    if args.config:
        raise UsageError("collect: --emulate needs no --config (its lanes are the emulators')")


def _history_lanes(args: argparse.Namespace) -> tuple[Any, Any]:
    """The config of the history calls and the transport they go through (None: the
    network); neither for --export."""
    if args.export:
        return None, None
    if args.emulate:
        from batchrecall.cli.collect_emulated import emulated_history

        lanes, seeded = emulated_history([job for group in args.seed for job in group])
        if args.seed:
            print(f"Emulators in this process hold {seeded:,} messages and conversations from "
                  "the --seed job files", file=sys.stderr)  # fmt: skip
        else:
            print("Emulators in this process hold no messages: --seed JOB... makes those of a "
                  "job exist, sent just now", file=sys.stderr)  # fmt: skip
        return lanes.config, lanes.transport
    from batchrecall.config import load_config, resolve_config_path

    return load_config(resolve_config_path(args.config)), None


def _from_history(
    args: argparse.Namespace, query: Any, lanes: tuple[Any, Any], writer: Any, now: int
) -> Any:
    from batchrecall.collect.history_run import HistoryRequest, collect_history
    from batchrecall.collect.sources import Collected, RowSink
    from batchrecall.logs import configure_logging
    from batchrecall.models import LaneKey

    config, transport = lanes
    # A missing section is exit 2 before any call.
    config.lane(LaneKey(vendor=query.vendor, app=query.app))
    # Logs go to stderr, JSON off a terminal; on one the progress line shows life instead.
    terminal = sys.stderr.isatty()
    configure_logging(stream=sys.stderr, level=logging.WARNING if terminal else logging.INFO)
    sink = RowSink(query, writer, Collected())
    request = HistoryRequest(
        query=query,
        config=config,
        now_ms=now,
        operator=args.operator,
        idle=args.idle_before is not None,
        transport=transport,
    )
    with _progress(sys.stderr) as progress:
        return collect_history(request, sink, progress)


def _senders(args: argparse.Namespace) -> tuple[str, ...]:
    senders = [s for group in args.sender for s in group]
    if args.senders_file:
        try:
            encoding = "utf-8-sig" if args.encoding in (None, "utf-8") else args.encoding
            text = Path(args.senders_file).read_text(encoding=encoding)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"collect: --senders-file {args.senders_file}: {exc}") from None
        senders += [line.strip() for line in text.splitlines() if line.strip()]
    senders = [s for s in senders if s]
    if not senders:
        raise UsageError("collect: name at least one --sender (or --senders-file)")
    return tuple(dict.fromkeys(senders))


def _print_summary(outcome: Any, stream: TextIO) -> None:
    from batchrecall.collect.times import utc_text

    scan, found = outcome.scan, outcome.found
    print(
        f"Scanned {scan.records:,} records ({outcome.unit_name} read: {len(outcome.sources):,}): "
        f"{found.items:,} items, {found.duplicates:,} recorded twice, "
        f"{scan.malformed:,} malformed",
        file=stream,
    )
    if found.skipped:
        print(f"  {found.skipped:,} matches the op cannot take were left out", file=stream)
    for missing in outcome.missing:
        print(f"  no export file: {missing}", file=stream)
    for note in outcome.notes:
        print(f"  note: {note}", file=stream)
    for named in scan.malformed_named:
        print(f"  malformed: {named}", file=stream)
    if outcome.stopped_at_max:
        print(f"Stopped at --max-items {found.items:,}: later matches were not read.", file=stream)
    if not found.items:
        return
    print("  per sender:    " + _top(found.senders), file=stream)
    print("  per conversation: " + _top(found.conversations), file=stream)
    print("  per hour (UTC): " + ", ".join(f"{h} {n:,}" for h, n in sorted(found.hours.items())),
          file=stream)  # fmt: skip
    print(f"  sent from {utc_text(found.first_ms)} to {utc_text(found.last_ms)}", file=stream)


def _top(counts: Any) -> str:
    items = counts.most_common(_TOP)
    rest = len(counts) - len(items)
    text = ", ".join(f"{name} {n:,}" for name, n in items)
    return text + (f" (and {rest:,} more)" if rest > 0 else "")


@contextlib.contextmanager
def _progress(stream: TextIO) -> Iterator[Callable[[Any], None]]:
    """A progress line on a terminal (units done, records read, matches); a log event a unit
    elsewhere."""
    import structlog

    log = structlog.get_logger("batchrecall")
    terminal = stream.isatty()

    def report(collected: Any) -> None:
        counts = {
            "done": collected.units_done,
            "total": collected.units_total,
            "records": collected.scan.records,
            "matches": collected.found.items,
        }
        if terminal:
            print(
                f"\r{collected.unit_name}: {counts['done']:,}/{counts['total']:,} · records "
                f"{counts['records']:,} · matches {counts['matches']:,}",
                end="",
                file=stream,
                flush=True,
            )
        else:
            log.info("batchrecall.collect_progress", unit=collected.unit_name, **counts)

    try:
        yield report
    finally:
        if terminal:
            print(file=stream)
