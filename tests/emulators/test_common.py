"""The shared parts: settings validation, the sliding window, the fault plan."""

from __future__ import annotations

from typing import Any

import pytest

from batchrecall.emulators import EmulatorSettings, FaultPlan, SlidingWindow


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rate": 0}, "rate"),
        ({"fault_rate": 1.5}, "fault_rate"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"recall_window_s": 0}, "recall_window_s"),
        ({"goeasy_recall_window_s": -5}, "goeasy_recall_window_s"),
    ],
)
def test_settings_name_the_bad_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        EmulatorSettings(**change)


def test_window_admits_rate_events_in_any_second() -> None:
    window = SlidingWindow.per_second(3)
    assert [window.admit(t) for t in (0.0, 0.2, 0.4, 0.6)] == [True, True, True, False]
    assert window.admit(0.999) is False
    assert window.admit(1.0) is True  # the event at 0.0 left the window
    assert window.admit(1.1) is False


def test_window_counts_only_admitted_events() -> None:
    window = SlidingWindow(1, 1.0)
    assert window.admit(0.0)
    assert not window.admit(0.5)
    assert window.admit(1.0)  # the refused event at 0.5 did not hold the window


def test_window_below_one_a_second_spaces_events() -> None:
    window = SlidingWindow.per_second(0.5)
    assert [window.admit(t) for t in (0.0, 1.9, 2.0)] == [True, False, True]


def test_window_without_rate_admits_everything() -> None:
    window = SlidingWindow.per_second(None)
    assert all(window.admit(0.0) for _ in range(10_000))


def test_fractional_rate_rounds_down() -> None:
    window = SlidingWindow.per_second(2.5)
    assert [window.admit(0.1 * n) for n in range(3)] == [True, True, False]


def kind_of(plan: FaultPlan, path: str) -> str | None:
    fault = plan.take(path)
    return fault.kind if fault else None


def test_scripted_faults_come_in_order_and_by_path() -> None:
    plan = FaultPlan(rate=0.0, seed=0, random_kinds=("http_500",))
    plan.push("throttle", retry_after=3)
    plan.push("http_503", count=2, only_path_contains="batch")
    plan.push("drop")
    assert [kind_of(plan, "/msg_recall") for _ in range(3)] == ["throttle", "drop", None]
    assert plan.pending == 2
    assert kind_of(plan, "/batch_recall") == "http_503"
    plan.clear()
    assert kind_of(plan, "/batch_recall") is None


def test_push_refuses_unknown_kinds() -> None:
    plan = FaultPlan(rate=0.0, seed=0, random_kinds=())
    with pytest.raises(ValueError, match="unknown fault kind"):
        plan.push("http_404")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        plan.push("drop", count=0)


def test_random_faults_are_seeded() -> None:
    def kinds(seed: int) -> list[str | None]:
        plan = FaultPlan(rate=0.3, seed=seed, random_kinds=("http_500", "http_503"))
        return [kind_of(plan, "/") for _ in range(200)]

    assert kinds(1) == kinds(1)
    assert kinds(1) != kinds(2)
    assert 30 < sum(kind is not None for kind in kinds(1)) < 90
