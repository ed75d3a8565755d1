"""Concurrency limits and rate limits (Prefect 3's global concurrency limits).

    from stratoflow.concurrency import concurrency, create_concurrency_limit, rate_limit

    create_concurrency_limit("database", limit=5)
    with concurrency("database"):
        ...

A limit called `tag:<tag>` also limits the task runs carrying that tag. See
docs/concurrency.md.
"""

from stratoflow.concurrency.api import (
    concurrency,
    create_concurrency_limit,
    delete_concurrency_limit,
    list_concurrency_limits,
    rate_limit,
    read_concurrency_limit,
    update_concurrency_limit,
)
from stratoflow.concurrency.errors import (
    AcquireConcurrencySlotTimeout,
    ConcurrencyLimitExists,
    ConcurrencyLimitNotFound,
)
from stratoflow.concurrency.store import (
    ConcurrencyLimit,
    ConcurrencyStore,
    Lease,
    MemoryConcurrencyStore,
)

__all__ = [
    "AcquireConcurrencySlotTimeout",
    "ConcurrencyLimit",
    "ConcurrencyLimitExists",
    "ConcurrencyLimitNotFound",
    "ConcurrencyStore",
    "Lease",
    "MemoryConcurrencyStore",
    "concurrency",
    "create_concurrency_limit",
    "delete_concurrency_limit",
    "list_concurrency_limits",
    "rate_limit",
    "read_concurrency_limit",
    "update_concurrency_limit",
]
