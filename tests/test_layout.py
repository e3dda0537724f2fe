"""The package's shape: the import contracts hold, catch a wrong import, and the API is exported."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import batchrecall

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def _copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(
        ROOT / "batchrecall", project / "batchrecall", ignore=shutil.ignore_patterns("__pycache__")
    )
    return project


@pytest.mark.slow
def test_the_import_contracts_hold(tmp_path: Path) -> None:
    result = _lint(_copy_project(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "bad_import", "named"),
    [
        ("intake/planner.py", "import batchrecall.run.engine", "batchrecall.run.engine"),
        ("results/store.py", "import batchrecall.intake.reader", "batchrecall.intake.reader"),
        ("emulators/common.py", "import batchrecall.vendors.yunxin", "batchrecall.vendors"),
        ("models.py", "import batchrecall.config", "batchrecall.config"),
    ],
)
def test_a_wrong_import_breaks_the_build(
    tmp_path: Path, module: str, bad_import: str, named: str
) -> None:
    project = _copy_project(tmp_path)
    target = project / "batchrecall" / module
    target.write_text(target.read_text() + f"\n{bad_import}  # noqa\n")
    result = _lint(project)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert named in result.stdout


def test_the_public_api_is_exported() -> None:
    for name in ("run_job", "RunRequest", "Summary", "ExitCode", "JobRef", "plan_job"):
        assert name in batchrecall.__all__
        assert getattr(batchrecall, name) is not None
    assert batchrecall.__all__ == sorted(batchrecall.__all__)


def test_validate_starts_without_the_log_the_display_or_http(tmp_path: Path) -> None:
    """`validate` is timed against a bare JSON parser: its start-up loads none of these."""
    job = tmp_path / "job.jsonl"
    job.write_text('{"vendor":"easemob","op":"recall","msg_id":"1","to":"u","chat_type":"chat"}\n')
    script = (
        "import sys\n"
        "from batchrecall.cli.main import main\n"
        f"assert main(['validate', {str(job)!r}]) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'structlog', 'rich', 'httpx'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "[]"
