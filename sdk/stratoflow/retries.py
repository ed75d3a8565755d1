"""Retry delays: backoff and jitter as pure functions.

`retry_delay_seconds` accepts a number, a list of numbers (one per retry; the last one
repeats), or a callable `retries -> list[float]` such as `exponential_backoff(10)`.
Jitter takes its random source as an argument so that it can be tested exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

RetryDelay = float | int | Sequence[float | int] | Callable[[int], Sequence[float | int]]


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Delays of `backoff_factor * 2**n` seconds for retry n = 0, 1, 2, ...

    >>> exponential_backoff(10)(4)
    [10.0, 20.0, 40.0, 80.0]
    """
    if backoff_factor < 0:
        raise ValueError(
            f"exponential_backoff(backoff_factor={backoff_factor}) needs a factor >= 0, "
            "for example exponential_backoff(backoff_factor=10)."
        )

    def delays(retries: int) -> list[float]:
        return [float(backoff_factor) * 2**n for n in range(retries)]

    delays.__name__ = f"exponential_backoff({backoff_factor})"
    return delays


def delays_for(retry_delay_seconds: RetryDelay, retries: int) -> list[float]:
    """The delay before each of `retries` retries, as a list of `retries` floats."""
    if retries <= 0:
        return []
    if callable(retry_delay_seconds):
        listed = [float(d) for d in retry_delay_seconds(retries)]
    elif isinstance(retry_delay_seconds, int | float):
        listed = [float(retry_delay_seconds)]
    else:
        listed = [float(d) for d in retry_delay_seconds]
    if not listed:
        return [0.0] * retries
    if len(listed) < retries:
        listed.extend([listed[-1]] * (retries - len(listed)))
    return listed[:retries]


def delay_before_retry(retry_delay_seconds: RetryDelay, retries: int, retry_number: int) -> float:
    """The delay before retry `retry_number` (0-based) of `retries`."""
    return delays_for(retry_delay_seconds, retries)[retry_number]


def jittered(
    delay: float, jitter_factor: float | None, rng: Callable[[], float] = random.random
) -> float:
    """Spread `delay` uniformly over `[delay * (1 - f), delay * (1 + f)]`, never below 0.

    `rng` returns a float in [0, 1): inject one for deterministic tests. A factor of
    None or 0 returns the delay unchanged.
    """
    if not jitter_factor or delay <= 0:
        return delay
    low = max(0.0, delay * (1.0 - jitter_factor))
    high = delay * (1.0 + jitter_factor)
    return low + (high - low) * rng()
