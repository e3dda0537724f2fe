"""The `[limits]` section: where lanes keep their rate windows, checked like every key."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchrecall.cli.main import main
from batchrecall.config import LimitsSettings, load_config
from batchrecall.errors import ConfigError

LANE = """
[yunxin.default]
base_url = "https://open.yunxinapi.com"
app_key = "yx-app-key"
app_secret = "yx-secret"
"""
REDIS_PASSWORD = "redis-pass-8c1e"


def _load(tmp_path: Path, limits: str, env: dict[str, str] | None = None) -> LimitsSettings:
    path = tmp_path / "batchrecall.toml"
    path.write_text(limits + LANE)
    return load_config(path, env=env or {}).limits


def _error(tmp_path: Path, limits: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, limits, env)
    assert REDIS_PASSWORD not in str(caught.value)
    return caught.value


def test_memory_is_the_default(tmp_path: Path) -> None:
    assert _load(tmp_path, "") == LimitsSettings(backend="memory", unavailable_timeout_s=30.0)
    assert _load(tmp_path, '[limits]\nbackend = "memory"\n').backend == "memory"


def test_redis_url_is_a_secret_from_env_or_file(tmp_path: Path) -> None:
    url = f"rediss://:{REDIS_PASSWORD}@redis.example.com:6380/0"
    limits = _load(
        tmp_path,
        '[limits]\nbackend = "redis"\nurl = "env:BR_REDIS"\nunavailable_timeout_s = 5\n',
        {"BR_REDIS": url},
    )
    assert limits.backend == "redis"
    assert limits.url is not None
    assert limits.url.reveal() == url
    assert limits.unavailable_timeout_s == 5.0
    assert REDIS_PASSWORD not in repr(limits)
    secret_file = tmp_path / "redis-url"
    secret_file.write_text(url + "\n")
    from_file = _load(tmp_path, f'[limits]\nbackend = "redis"\nurl = "file:{secret_file}"\n')
    assert from_file.url is not None
    assert from_file.url.reveal() == url


@pytest.mark.parametrize(
    ("limits", "key", "problem"),
    [
        ('[limits]\nbackend = "etcd"\n', "limits.backend", "memory"),
        ('[limits]\nbackend = "redis"\n', "limits.url", "missing"),
        ('[limits]\nurl = "redis://127.0.0.1:6379"\n', "limits.url", "backend"),
        ('[limits]\nbackend = "redis"\nurl = "env:BR_UNSET"\n', "limits.url", "BR_UNSET"),
        (
            f'[limits]\nbackend = "redis"\nurl = "http://:{REDIS_PASSWORD}@host:6379"\n',
            "limits.url",
            "redis://",
        ),
        ('[limits]\nunavailable_timeout_s = "soon"\n', "limits.unavailable_timeout_s", "number"),
        ("[limits]\nunavailable_timeout_s = 0\n", "limits.unavailable_timeout_s", "positive"),
        ("[limits]\nbackoff = 1\n", "limits.backoff", "unknown"),
        ('limits = "redis"\n', "[limits]", "table"),
    ],
)
def test_limits_errors_name_the_key(tmp_path: Path, limits: str, key: str, problem: str) -> None:
    error = _error(tmp_path, limits)
    assert error.key == key
    assert problem in error.problem


def test_a_limits_error_is_exit_2_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.jsonl"
    job.write_text('{"vendor": "yunxin", "op": "clear_history", "conversation_id": "a|1|b"}\n')
    config = tmp_path / "batchrecall.toml"
    config.write_text('[limits]\nbackend = "redis"\n' + LANE)
    code = main(["run", str(job), "--config", str(config), "--yes", "--no-progress"])
    assert code == 2
    assert "limits.url" in capsys.readouterr().err
    assert not job.with_name("job.results.jsonl").exists()
