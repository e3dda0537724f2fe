"""The emulators' latency jitter (a benchmark knob): bounded by the latency it varies."""

from __future__ import annotations

import pytest

from batchrecall.emulators import EmulatorSettings


@pytest.mark.parametrize(("latency", "jitter"), [(10.0, 20.0), (10.0, -1.0), (0.0, 5.0)])
def test_jitter_must_lie_between_zero_and_the_latency(latency: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="latency_jitter_ms"):
        EmulatorSettings(latency_ms=latency, latency_jitter_ms=jitter)


def test_jitter_defaults_to_none() -> None:
    assert EmulatorSettings(latency_ms=100).latency_jitter_ms == 0.0
    assert EmulatorSettings(latency_ms=100, latency_jitter_ms=100).latency_jitter_ms == 100
