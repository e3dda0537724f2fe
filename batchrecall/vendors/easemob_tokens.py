"""One Easemob lane's app token: got once, shared by every call, renewed at half its life.

Where it comes from is the lane's business: Easemob's token endpoint, or (Agora Chat) built
here. A refused token request is remembered: the lane asks once, and every later call of the lane
fails at once with the same lane-stopping error, without asking again (SPEC §4).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import anyio

from batchrecall.errors import CallError, ErrorCode, LaneFatalError

TokenIssuer = Callable[[], Awaitable[tuple[str, float]]]
"""Gets a new token and its lifetime in seconds (0 or less: it never expires), or raises."""


class AppTokens:
    def __init__(self, issue: TokenIssuer, *, clock: Callable[[], float]) -> None:
        self._issue = issue
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = -math.inf
        self._generation = 0
        self._refused: LaneFatalError | None = None
        self._lock = anyio.Lock()

    async def current(self) -> tuple[str, int]:
        """The lane's token and its generation (for `drop`); a new one when due.

        Raises the issuer's error with `delivered = False`: a token request carries no item.
        """
        async with self._lock:
            if self._refused is not None:
                raise _again(self._refused)
            if self._token is None or self._clock() >= self._refresh_at:
                try:
                    token, lifetime = await self._issue()
                except LaneFatalError as exc:
                    exc.delivered = False
                    self._refused = exc
                    raise
                except CallError as exc:
                    exc.delivered = False
                    raise
                # Renewed at half its lifetime, as the official Easemob SDK does.
                self._refresh_at = math.inf if lifetime <= 0 else self._clock() + lifetime / 2
                self._token = token
                self._generation += 1
            return self._token, self._generation

    async def drop(self, generation: int) -> None:
        """Forget the token if it is still the one of `generation` (after a 401)."""
        async with self._lock:
            if generation == self._generation:
                self._token = None


def _again(refused: LaneFatalError) -> LaneFatalError:
    return LaneFatalError(
        ErrorCode(refused.code),
        refused.message,
        http_status=refused.http_status,
        vendor_code=refused.vendor_code,
        delivered=False,
    )
