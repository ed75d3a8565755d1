"""`concurrency()`, `rate_limit()` and managing limits, on the current services' store."""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Iterator, Sequence

from stratoflow.concurrency._acquire import acquire_leases, consume_rate
from stratoflow.concurrency.errors import ConcurrencyLimitNotFound, not_found_message
from stratoflow.concurrency.store import (
    ConcurrencyLimit,
    ConcurrencyStore,
    rate_limit_without_decay_message,
    validate_slots,
)
from stratoflow.context import Services, flow_run_context, get_services, task_run_context

_warned: weakref.WeakKeyDictionary[ConcurrencyStore, set[str]] = weakref.WeakKeyDictionary()
_warned_lock = threading.Lock()


@contextlib.contextmanager
def concurrency(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
    *,
    lease_seconds: float | None = None,
) -> Iterator[None]:
    """Hold `occupy` slots of each named limit for the duration of the block.

        with concurrency("database", occupy=1):
            write_rows()

    Waits while a limit is full; raises AcquireConcurrencySlotTimeout after
    `timeout_seconds` (None: wait as long as needed). A missing or inactive limit does not
    limit (a warning is logged once per name) unless `strict=True`, which raises
    ConcurrencyLimitNotFound. The slots are held as a lease that this process renews; if
    the process dies, they come back when the lease expires (`lease_seconds`, default
    STRATOFLOW_CONCURRENCY_LEASE_SECONDS).
    """
    services = _services()
    store = services.concurrency
    limited = _limits_to_use(store, _sorted_names(names), occupy, strict, rate=False)
    if not limited:
        yield
        return
    if lease_seconds is None:
        from stratoflow.settings import get_settings

        lease_seconds = get_settings().concurrency_lease_seconds
    holding = acquire_leases(
        store,
        [limit.name for limit in limited],
        occupy,
        clock=services.clock,
        rng=services.rng,
        lease_seconds=lease_seconds,
        timeout_seconds=timeout_seconds,
    )
    try:
        yield
    finally:
        holding.release()


def rate_limit(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Take `occupy` slots of each named rate limit; they are not released but decay.

    A limit with `limit=L` and `slot_decay_per_second=r` lets at most `L + r * t` slots
    through in any `t` seconds. Waits while the limit is full, like `concurrency()`, and
    treats missing or inactive limits the same way. A limit without decay raises
    ValueError: its slots would never come back.
    """
    services = _services()
    store = services.concurrency
    limited = _limits_to_use(store, _sorted_names(names), occupy, strict, rate=True)
    if limited:
        consume_rate(
            store,
            [limit.name for limit in limited],
            occupy,
            clock=services.clock,
            rng=services.rng,
            timeout_seconds=timeout_seconds,
        )


# Managing limits


def create_concurrency_limit(
    name: str,
    limit: int,
    *,
    slot_decay_per_second: float = 0.0,
    active: bool = True,
) -> ConcurrencyLimit:
    """Create a limit of `limit` slots (a rate limit when `slot_decay_per_second > 0`).

    Name it `tag:<tag>` to limit the task runs carrying that tag. Raises
    ConcurrencyLimitExists when the name is taken.
    """
    return _services().concurrency.create(
        name, limit, slot_decay_per_second=slot_decay_per_second, active=active
    )


def read_concurrency_limit(name: str) -> ConcurrencyLimit:
    """The limit called `name`; raises ConcurrencyLimitNotFound when there is none."""
    found = _services().concurrency.read(name)
    if found is None:
        raise ConcurrencyLimitNotFound(
            f"Concurrency limit {name!r} does not exist. Create it with "
            f"create_concurrency_limit({name!r}, limit=<slots>)."
        )
    return found


def list_concurrency_limits() -> list[ConcurrencyLimit]:
    """Every limit, sorted by name."""
    return _services().concurrency.list()


def update_concurrency_limit(
    name: str,
    *,
    limit: int | None = None,
    active: bool | None = None,
    slot_decay_per_second: float | None = None,
) -> ConcurrencyLimit:
    """Change some fields of a limit; held slots stay held. Raises ConcurrencyLimitNotFound."""
    return _services().concurrency.update(
        name, limit=limit, active=active, slot_decay_per_second=slot_decay_per_second
    )


def delete_concurrency_limit(name: str) -> None:
    """Delete a limit (its holders keep running); raises ConcurrencyLimitNotFound."""
    if not _services().concurrency.delete(name):
        raise ConcurrencyLimitNotFound(f"Concurrency limit {name!r} does not exist.")


# Helpers


def _services() -> Services:
    """The services of the current flow run, else the current services."""
    flow_ctx = flow_run_context.get()
    return flow_ctx.services if flow_ctx is not None else get_services()


def _sorted_names(names: str | Sequence[str]) -> list[str]:
    listed = [names] if isinstance(names, str) else list(names)
    for name in listed:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Concurrency limit names are non-empty strings, got {name!r}.")
    return sorted(set(listed))


def _limits_to_use(
    store: ConcurrencyStore, names: list[str], occupy: int, strict: bool, *, rate: bool
) -> list[ConcurrencyLimit]:
    """The active limits among `names`; handles missing and inactive ones per `strict`."""
    validate_slots(occupy)
    limits: list[ConcurrencyLimit] = []
    for name in names:
        limit = store.read(name)
        if limit is None or not limit.active:
            inactive = limit is not None
            if strict:
                raise ConcurrencyLimitNotFound(not_found_message(name, inactive=inactive))
            _warn_once(store, name, inactive=inactive)
            continue
        if occupy > limit.limit:
            raise ValueError(
                f"occupy={occupy} is more than concurrency limit {name!r} has "
                f"({limit.limit} slot(s)), so it could never be acquired. Occupy fewer slots "
                f"or raise the limit with update_concurrency_limit({name!r}, limit=...)."
            )
        if rate and not limit.is_rate_limit:
            raise ValueError(rate_limit_without_decay_message(name))
        limits.append(limit)
    return limits


def _warn_once(store: ConcurrencyStore, name: str, *, inactive: bool) -> None:
    with _warned_lock:
        seen = _warned.setdefault(store, set())
        if name in seen:
            return
        seen.add(name)
    state = "is inactive" if inactive else "does not exist"
    how = (
        f"activate it with update_concurrency_limit({name!r}, active=True)"
        if inactive
        else f"create it with create_concurrency_limit({name!r}, limit=<slots>)"
    )
    _logger().warning(
        "Concurrency limit %r %s, so this runs without limiting. To limit it, %s; to make "
        "this an error, pass strict=True.",
        name,
        state,
        how,
    )


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    if task_run_context.get() is not None or flow_run_context.get() is not None:
        from stratoflow.logging import get_run_logger

        return get_run_logger()
    return logging.getLogger("stratoflow.concurrency")
