"""Retry decisions (SPEC §4): which failures retry, full-jitter backoff, Retry-After."""

from __future__ import annotations

import random

import pytest

from batchrecall.errors import (
    CallError,
    ErrorCode,
    LaneFatalError,
    PermanentCallError,
    SplitCallError,
    ThrottledError,
    TokenRejectedError,
    TransientCallError,
    UnconfirmedCallError,
)
from batchrecall.run.retry import RetryPolicy

POLICY = RetryPolicy(max_attempts=6, base_delay_s=0.5, max_delay_s=30.0)


def transient(retry_after: float | None = None) -> TransientCallError:
    return TransientCallError(
        ErrorCode.VENDOR_UNAVAILABLE, "502", http_status=502, retry_after=retry_after
    )


@pytest.mark.parametrize("attempt", range(1, 12))
def test_full_jitter_stays_within_the_exponential_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
    delays = [POLICY.backoff(attempt, rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # Full jitter: spread over the whole range, not bunched near the ceiling.
    assert min(delays) < 0.05 * ceiling
    assert max(delays) > 0.95 * ceiling
    assert 0.4 * ceiling < sum(delays) / len(delays) < 0.6 * ceiling


def test_backoff_grows_exponentially_then_caps() -> None:
    policy = RetryPolicy(max_attempts=20, base_delay_s=1.0, max_delay_s=10.0)
    ceilings = [max(policy.backoff(a, random.Random(s)) for s in range(300)) for a in range(1, 8)]
    assert ceilings[0] <= 1.0
    assert 1.0 < ceilings[1] <= 2.0
    assert 2.0 < ceilings[2] <= 4.0
    assert 4.0 < ceilings[3] <= 8.0
    assert all(9.0 < c <= 10.0 for c in ceilings[4:])


def test_same_seed_same_delays() -> None:
    first = [POLICY.backoff(a, random.Random(7)) for a in range(1, 6)]
    again = [POLICY.backoff(a, random.Random(7)) for a in range(1, 6)]
    assert first == again


@pytest.mark.parametrize(
    "error",
    [
        transient(),
        ThrottledError(ErrorCode.RATE_LIMITED, "reach_limit", http_status=429),
        UnconfirmedCallError(ErrorCode.TIMEOUT, "read timeout", delivered=False),
    ],
    ids=["5xx", "throttled", "timeout"],
)
def test_transient_errors_retry_until_max_attempts(error: CallError) -> None:
    rng = random.Random(1)
    for attempt in range(1, 6):
        delay = POLICY.next_delay(attempt, error, rng)
        assert delay is not None
        assert 0.0 <= delay <= min(30.0, 0.5 * 2 ** (attempt - 1))
    assert POLICY.next_delay(6, error, rng) is None
    assert POLICY.next_delay(7, error, rng) is None


def test_single_attempt_policy_never_retries() -> None:
    assert RetryPolicy(max_attempts=1).next_delay(1, transient(), random.Random(0)) is None


@pytest.mark.parametrize(
    "error",
    [
        CallError(ErrorCode.VENDOR_ERROR, "odd"),
        PermanentCallError(ErrorCode.BATCH_REJECTED, "too many", http_status=400),
        LaneFatalError(ErrorCode.AUTH_FAILED, "bad secret", http_status=401),
        LaneFatalError(ErrorCode.QUOTA_EXHAUSTED, "resource_limited", http_status=403),
        SplitCallError(ErrorCode.BATCH_REJECTED, "split"),
        TokenRejectedError("expired", token_generation=1),
    ],
    ids=lambda e: type(e).__name__,
)
def test_non_transient_errors_never_retry(error: CallError) -> None:
    assert POLICY.next_delay(1, error, random.Random(0)) is None


@pytest.mark.parametrize("retry_after", [0.0, 3.0, 10.0, 120.0])
def test_retry_after_is_a_floor(retry_after: float) -> None:
    rng = random.Random(3)
    for attempt in range(1, 6):
        error = ThrottledError(
            ErrorCode.RATE_LIMITED, "416", vendor_code="416", retry_after=retry_after
        )
        delay = POLICY.next_delay(attempt, error, rng)
        assert delay is not None
        assert delay >= retry_after
        assert delay <= max(retry_after, min(30.0, 0.5 * 2 ** (attempt - 1)))


def test_retry_after_does_not_grant_attempts_past_the_limit() -> None:
    error = ThrottledError(ErrorCode.RATE_LIMITED, "429", retry_after=1.0)
    assert POLICY.next_delay(6, error, random.Random(0)) is None
