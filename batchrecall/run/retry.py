"""Retry decisions: which failures retry, and how long to wait (no I/O here)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from batchrecall.errors import CallError, TransientCallError


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, never shorter than a Retry-After."""

    max_attempts: int
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, attempt - 1))
        return rng.uniform(0.0, ceiling)

    def next_delay(self, attempt: int, error: CallError, rng: random.Random) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when the call is done trying."""
        if not isinstance(error, TransientCallError) or attempt >= self.max_attempts:
            return None
        delay = self.backoff(attempt, rng)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay
