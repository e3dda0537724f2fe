"""A vendor shipped as its own package (tests/fixtures/vendor_plugin, "Acme Chat") is found
through its entry point once installed, and runs end to end: the job schema, the config, the
plan and the emulators learn it from its registration alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = Path(__file__).resolve().parent / "fixtures" / "vendor_plugin"


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the plugin, installed by pip, and this environment's batchrecall."""
    tmp = tmp_path_factory.mktemp("plugin")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run(
        [str(_python(venv)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # batchrecall (an editable install here) and its dependencies, with their own .pth files.
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "batchrecall_here.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    source = tmp / "vendor_plugin"
    shutil.copytree(PLUGIN, source)
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(_python(venv)),
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    if installed.returncode != 0 and "No module named 'hatchling'" in installed.stderr:
        pytest.skip(f"pip cannot build the plugin offline: {installed.stderr.strip()[-300:]}")
    assert installed.returncode == 0, installed.stderr
    return venv


def _batchrecall(
    venv: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BATCHRECALL_")}
    return subprocess.run(
        [str(_python(venv)), "-m", "batchrecall", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**environ, **(env or {})},
        timeout=120,
    )


def _acme(i: int, **extra: object) -> dict[str, object]:
    return {"vendor": "acme", "op": "recall", "conversation": "c1", "message_id": str(i), **extra}


def test_an_installed_plugin_vendor_runs_end_to_end_on_its_emulator(
    plugin_venv: Path, tmp_path: Path
) -> None:
    rows = [_acme(i) for i in range(12)]
    rows.append(_acme(99, notify=True))
    rows.append({"vendor": "goeasy", "op": "recall", "groupId": "g1", "messages": [1]})
    job = tmp_path / "job.jsonl"
    job.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))

    done = _batchrecall(plugin_venv, "run", str(job), "--emulate", "--yes", cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    # The plan: Acme's limit of 10 a call (its registration) makes 12 items two calls, and the
    # item with notify=true a third (its own batch key).
    assert "acme.default" in done.stdout
    results = [
        orjson.loads(line) for line in (tmp_path / "job.results.jsonl").read_bytes().splitlines()
    ]
    acme = [row for row in results if row["vendor"] == "acme"]
    assert len(acme) == 13
    assert {row["status"] for row in results} == {"ok"}
    assert len({row["call_id"] for row in acme}) == 3
    # The identity option the registration declares is part of the item key.
    assert {row["item_key"] for row in acme if row["target"] == "99"} == {
        "acme:default:recall:c1:99:notify=true"
    }


def test_the_job_schema_and_config_learn_the_plugin_vendor(
    plugin_venv: Path, tmp_path: Path
) -> None:
    job = tmp_path / "job.jsonl"
    rows = [_acme(1), _acme(2, colour="red"), {"vendor": "acme", "op": "delete_message"}]
    job.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    checked = _batchrecall(plugin_venv, "validate", str(job), cwd=tmp_path)
    assert checked.returncode == 1
    assert (
        "job.jsonl:2: unknown field 'colour': acme recall takes conversation, message_id, notify"
        in checked.stdout
    )
    assert "job.jsonl:3: field 'op' must be one of recall for acme" in checked.stdout
    config = tmp_path / "batchrecall.toml"
    config.write_text(
        '[acme.default]\nbase_url = "https://acme.example"\ntenant = "t"\napi_key = "k"\n'
        "region = 7\n"
    )
    planned = _batchrecall(plugin_venv, "plan", str(job), "--config", str(config), cwd=tmp_path)
    assert planned.returncode == 2
    assert "config: acme.default.region: must be a non-empty string" in planned.stderr


def test_a_plugin_runs_the_adapter_contract(plugin_venv: Path) -> None:
    """tests/vendors/test_contract.py, run against the plugin as its README section says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHRECALL_", "PYTEST_"))}
    env |= {
        "BATCHRECALL_CONTRACT_PROFILES": "batchrecall_acme.contract:PROFILES",
        "BATCHRECALL_CONTRACT_VENDOR": "acme",
    }
    ran = subprocess.run(
        [
            str(_python(plugin_venv)),
            "-m",
            "pytest",
            "-o",
            "addopts=",
            "-v",
            "-p",
            "no:cacheprovider",
            "tests/vendors/test_contract.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-3000:]
    passed = [line for line in ran.stdout.splitlines() if "PASSED" in line]
    # Every contract test, each with Acme's profile only (BATCHRECALL_CONTRACT_VENDOR).
    assert len(passed) == 13, ran.stdout[-3000:]
    assert all("[acme-recall" in line for line in passed)
