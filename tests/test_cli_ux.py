"""What an operator meets at the command line: help that helps, no traceback for ordinary
actions (Ctrl-C or end of input at the prompt, Ctrl-C during the summary, a port in use)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchrecall.cli import main as cli
from batchrecall.cli import output
from batchrecall.cli.arguments import build_parser
from batchrecall.results.manifest import tool_version


def _subparsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    yield from sub.choices.items()


@pytest.mark.parametrize("command", ["run", "validate", "plan", "report", "emulate"])
def test_every_option_says_what_it_does_and_its_default(command: str) -> None:
    parser = dict(_subparsers())[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{command} {name}: no help"
        assert action.help != argparse.SUPPRESS, f"{command} {name}: hidden"
        if action.option_strings:
            assert "(default: " in action.help, f"{command} {name}: no default named"


def test_run_help_ends_with_three_examples_and_the_config_lookup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    examples = text[text.index("examples:") :].splitlines()
    commands = [line for line in examples if line.strip().startswith("batchrecall run ")]
    assert len(commands) == 3
    assert examples[-1] == (
        "config lookup: --config P, else $BATCHRECALL_CONFIG, else ./batchrecall.toml"
    )
    assert "--emulate-scenario" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"batchrecall {tool_version()}"


class _Terminal:
    """A stdin that says it is a terminal; reading it does what `answer` says."""

    def __init__(self, answer: BaseException | str) -> None:
        self._answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        if isinstance(self._answer, BaseException):
            raise self._answer
        return self._answer


@pytest.fixture
def small_job(tmp_path: Path) -> Path:
    job = tmp_path / "job.jsonl"
    job.write_text('{"vendor":"yunxin","op":"recall","conversation_id":"a|1|b",'
                   '"message_server_id":"1"}\n')  # fmt: skip
    return job


@pytest.mark.parametrize(
    ("answer", "code", "said"),
    [
        (KeyboardInterrupt(), 130, "Nothing was sent."),
        ("", 2, "Nothing was sent (no answer)."),
        ("no\n", 2, "Nothing was sent."),
    ],
    ids=["ctrl-c", "end-of-input", "no"],
)
def test_the_prompt_takes_ctrl_c_and_end_of_input_as_a_no(
    small_job: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: BaseException | str,
    code: int,
    said: str,
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal(answer))
    assert cli.main(["run", str(small_job), "--emulate", "--no-progress"]) == code
    printed = capsys.readouterr()
    assert printed.out.splitlines()[-1].endswith(said)
    assert "Traceback" not in printed.err
    assert not small_job.with_name("job.results.jsonl").exists()


def test_ctrl_c_while_the_summary_prints_still_prints_the_resume_line(
    small_job: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: every call fails at once, and stays left to do
    config = tmp_path / "batchrecall.toml"
    config.write_text(
        f'[yunxin.default]\nbase_url = "http://127.0.0.1:{port}"\napp_key = "k"\n'
        'app_secret = "s3cr3t"\n'
    )
    printing = output.print_summary

    def interrupted_summary(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # the operator presses Ctrl-C once more
        printing(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(output, "print_summary", interrupted_summary)
    code = cli.main(["run", str(small_job), "--config", str(config), "--yes", "--no-progress",
                     "--max-attempts", "1"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 1
    assert "Summary: 1 item" in printed
    assert printed.splitlines()[-1].startswith("To continue: batchrecall run ")
    assert "--resume" in printed.splitlines()[-1]


def test_emulate_on_a_port_in_use_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["emulate", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == f"batchrecall: port {port} is in use; pass --port 0 for a free one\n"
