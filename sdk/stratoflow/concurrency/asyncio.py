"""`concurrency()` and `rate_limit()` for async code (Prefect's `prefect.concurrency.asyncio`).

    from stratoflow.concurrency.asyncio import concurrency, rate_limit

    async with concurrency("database", occupy=1):
        await write_rows()
    await rate_limit("api-calls")

They are the synchronous ones (stratoflow.concurrency.api), with the waiting for slots
done in a worker thread so that the event loop keeps running other coroutines meanwhile.
`lease_duration` is the seconds a held slot's lease lasts without renewal (None: the
STRATOFLOW_CONCURRENCY_LEASE_SECONDS setting). `max_retries` is accepted for Prefect's
signature; waiting is bounded by `timeout_seconds` only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from stratoflow.concurrency import api

__all__ = ["concurrency", "rate_limit"]


@contextlib.asynccontextmanager
async def concurrency(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float | None = None,
    strict: bool = False,
) -> AsyncIterator[None]:
    """Hold `occupy` slots of each named limit for the duration of the `async with` block.

    Raises AcquireConcurrencySlotTimeout after `timeout_seconds`; a missing or inactive
    limit does not limit unless `strict=True` (ConcurrencyLimitNotFound), as the
    synchronous `concurrency()`.
    """
    holding = api.concurrency(names, occupy, timeout_seconds, strict, lease_seconds=lease_duration)
    acquiring = asyncio.ensure_future(asyncio.to_thread(holding.__enter__))
    try:
        await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        # The thread may still take the slots after this coroutine was cancelled: give
        # them back as soon as it has them, so that none is held until its lease expires.
        acquiring.add_done_callback(lambda done: _release_if_taken(done, holding))
        raise
    try:
        yield
    finally:
        await asyncio.to_thread(holding.__exit__, None, None, None)


def _release_if_taken(
    acquiring: asyncio.Future[None], holding: contextlib.AbstractContextManager[None]
) -> None:
    if not acquiring.cancelled() and acquiring.exception() is None:
        holding.__exit__(None, None, None)


async def rate_limit(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Take `occupy` slots of each named rate limit, waiting for them to decay when full
    (without blocking the event loop); see the synchronous `rate_limit()`."""
    await asyncio.to_thread(api.rate_limit, names, occupy, timeout_seconds, strict)
