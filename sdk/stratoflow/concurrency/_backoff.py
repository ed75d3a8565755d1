"""How long to wait before asking for a slot again: capped exponential backoff with jitter.

Pure (the random source is an argument) so that it is tested exactly.
"""

from __future__ import annotations

from collections.abc import Callable

BASE_SECONDS = 0.05
MAX_SECONDS = 1.0


def backoff_seconds(
    attempt: int,
    rng: Callable[[], float],
    *,
    base: float = BASE_SECONDS,
    cap: float = MAX_SECONDS,
) -> float:
    """The wait after failed attempt number `attempt` (0, 1, 2, ...).

    The ceiling doubles from `base` up to `cap`; the wait is drawn uniformly from the
    upper half of it ("equal jitter"), so waiters spread out but never busy-loop.
    """
    if attempt < 0:
        raise ValueError(f"attempt={attempt} must be >= 0")
    ceiling = min(cap, base * 2.0 ** min(attempt, 32))
    return ceiling / 2 + rng() * ceiling / 2


def next_wait(
    attempt: int,
    rng: Callable[[], float],
    remaining: float | None,
    *,
    base: float = BASE_SECONDS,
    cap: float = MAX_SECONDS,
) -> float:
    """`backoff_seconds`, but never past a deadline `remaining` seconds away (None: none)."""
    delay = backoff_seconds(attempt, rng, base=base, cap=cap)
    if remaining is None:
        return delay
    return max(min(delay, remaining), 0.0)
