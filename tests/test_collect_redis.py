"""collect's history window lives in the `[limits]` store: with Redis, every process of the
app key takes its history permits from one window (and honours its pauses)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from batchrecall.cli.main import main
from batchrecall.emulators.server import EmulatorSet
from tests.collect_server import served
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow


def test_history_permits_come_from_the_shared_window(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    emulators = EmulatorSet()
    emulators.yunxin.state.add_message("spammer-7|1|alice", 1001, sent_at=time.time() - 60)
    config = tmp_path / "c.toml"
    out = tmp_path / "spam.jsonl"
    with served(emulators, config):
        config.write_text(
            config.read_text() + f'\n[limits]\nbackend = "redis"\nurl = "{redis_server.url}"\n'
        )
        code = main(["collect", "yunxin", "--config", str(config), "--out", str(out),
                     "--sender", "spammer-7", "--since", "1h"])  # fmt: skip
    assert code == 0
    with redis.Redis.from_url(redis_server.url) as client:
        keys = [key.decode() for key in client.keys("*")]
    assert any(key.endswith(":history") and "yunxin:" in key for key in keys), keys
