"""Errors raised by concurrency limits."""

from __future__ import annotations

from stratoflow.exceptions import ObjectNotFound, StratoflowError


class ConcurrencyLimitNotFound(ObjectNotFound):
    """A concurrency limit does not exist (or is inactive, where an active one is required)."""


class ConcurrencyLimitExists(StratoflowError, ValueError):
    """`create_concurrency_limit` was called for a name that already has a limit."""


class AcquireConcurrencySlotTimeout(StratoflowError, TimeoutError):
    """Slots of a concurrency limit did not become free within `timeout_seconds`."""


def not_found_message(name: str, *, inactive: bool = False) -> str:
    if inactive:
        return (
            f"Concurrency limit {name!r} is inactive. Activate it with "
            f"update_concurrency_limit({name!r}, active=True) (from stratoflow.concurrency), "
            "or pass strict=False to run without limiting while it is inactive."
        )
    return (
        f"Concurrency limit {name!r} does not exist. Create it with "
        f"create_concurrency_limit({name!r}, limit=<slots>) (from stratoflow.concurrency), "
        "or pass strict=False to run without limiting when it is missing."
    )
