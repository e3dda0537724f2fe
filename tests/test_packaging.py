"""The wheel and sdist `python -m build` makes: the wheel holds every module of the package, its
data (py.typed), the command and the built-in vendors' entry points; the sdist builds it again.
(.ci/wheel-check installs the wheel into a fresh venv and runs the demo from there.)"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return out


def _package_files() -> set[str]:
    """Every file of the package as the source tree holds it (caches apart)."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "batchrecall").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_holds_the_whole_package_and_its_entry_points(dist: Path) -> None:
    (wheel,) = dist.glob("batchrecall-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
        entry_points = archive.read(info).decode()
    assert _package_files() <= names
    assert "batchrecall/py.typed" in names
    assert "batchrecall = batchrecall.cli.entry:main" in entry_points
    for vendor in ("easemob", "goeasy", "rongcloud", "tencent", "yunxin"):
        assert f"{vendor} = batchrecall.catalog.builtin:{vendor.upper()}" in entry_points
    assert not any(name.startswith("tests/") for name in names)


def test_the_sdist_holds_the_package_and_the_samples(dist: Path) -> None:
    (sdist,) = dist.glob("batchrecall-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert _package_files() <= names
    assert {"pyproject.toml", "README.md", "samples/demo.jsonl", "Dockerfile"} <= names
