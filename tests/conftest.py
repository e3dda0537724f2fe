"""Shared fixtures: anyio runs on asyncio only (the lanes rely on asyncio primitives); a real
redis-server for the shared limiter's tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.redis_server import RedisServer, in_ci, redis_server_binary


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A throwaway redis-server on a free loopback port (skipped where none is installed,
    except under CI, where it must be)."""
    if redis_server_binary() is None:
        message = "redis-server is not installed (apt-get install -y redis-server)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """The CLI configures structlog for the process; every test starts from the defaults."""
    yield
    structlog.reset_defaults()
