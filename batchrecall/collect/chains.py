"""History read as chains of pages side by side: each chain (a sender's search, a conversation's
history) waits for its own page before asking the next, so one chain alone makes at most one
call a round trip; a few at once let the lane's history rate set the pace. Every call still
takes the lane's permit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio

from batchrecall.errors import CallError

__all__ = ["CHAINS", "side_by_side"]

CHAINS = 4
"""Chains in flight at once."""

Chain = Callable[[], Awaitable[bool]]


async def side_by_side(chains: Sequence[Chain], width: int = CHAINS) -> None:
    """Run the chains, `width` at a time. One that returns False (--max-items reached) or
    fails with a CallError stops the others; the first CallError is raised after."""
    failed: list[CallError] = []
    limiter = anyio.CapacityLimiter(width)

    async with anyio.create_task_group() as group:

        async def one(chain: Chain) -> None:
            try:
                async with limiter:
                    if not await chain():
                        group.cancel_scope.cancel()
            except CallError as exc:
                failed.append(exc)
                group.cancel_scope.cancel()

        for chain in chains:
            group.start_soon(one, chain)
    if failed:
        raise failed[0]
