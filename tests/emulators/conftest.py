"""Fixtures of the emulator tests."""

from __future__ import annotations

import pytest

from tests.emulators.support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
