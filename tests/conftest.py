"""Shared fixtures: anyio runs on asyncio only (the lanes rely on asyncio primitives)."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
