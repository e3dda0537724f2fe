"""Shared fixtures: anyio runs on asyncio only (the lanes rely on asyncio primitives)."""

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """The CLI configures structlog for the process; every test starts from the defaults."""
    yield
    structlog.reset_defaults()
