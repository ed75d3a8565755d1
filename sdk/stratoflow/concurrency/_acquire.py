"""Waiting for slots: try, back off on the clock, try again (shared by the API and the engine)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from stratoflow.clock import Clock
from stratoflow.concurrency._backoff import next_wait
from stratoflow.concurrency.errors import AcquireConcurrencySlotTimeout
from stratoflow.concurrency.leases import HeldLease, LeaseRenewer, get_renewer
from stratoflow.concurrency.store import ConcurrencyStore

logger = logging.getLogger("stratoflow.concurrency")


@dataclass(eq=False)
class LeaseHolding:
    """Leases taken by one acquisition (one lease id across its limits)."""

    store: ConcurrencyStore
    lease_id: str
    renewer: LeaseRenewer
    held: list[HeldLease] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.held]

    @property
    def lost(self) -> bool:
        """True when a renewal found one of the leases gone (it had expired)."""
        return any(h.lost for h in self.held)

    def release(self) -> None:
        """Give every slot back, newest first. Safe to call twice."""
        with self._lock:
            held, self.held = self.held, []
        for lease in reversed(held):
            self.renewer.drop(lease)
            try:
                self.store.release(lease.name, self.lease_id)
            except Exception:
                logger.warning(
                    "Could not release the lease on concurrency limit %r; its slots come back "
                    "when the lease expires.",
                    lease.name,
                    exc_info=True,
                )


def acquire_leases(
    store: ConcurrencyStore,
    names: Sequence[str],
    slots: int,
    *,
    clock: Clock,
    rng: Callable[[], float],
    lease_seconds: float,
    timeout_seconds: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    check_abort: Callable[[], None] | None = None,
    renewer: LeaseRenewer | None = None,
) -> LeaseHolding:
    """Take `slots` of each limit in `names`, in order, waiting while one is full.

    Slots already taken are kept while waiting for the next limit, so callers pass the
    names sorted: two holders then never wait for each other in a cycle. `on_wait(name)`
    is called each time a limit is found full; `check_abort()` may raise to stop waiting.
    On any error the slots taken so far are given back.
    """
    holding = LeaseHolding(store, uuid.uuid4().hex, renewer or get_renewer())
    start = clock.now()
    try:
        for name in names:
            attempt = 0
            while not store.try_acquire(
                [name], slots, holding.lease_id, clock.now(), lease_seconds
            ):
                if on_wait is not None:
                    on_wait(name)
                remaining = _remaining(clock, start, timeout_seconds)
                if remaining is not None and remaining <= 0:
                    raise AcquireConcurrencySlotTimeout(
                        _timeout_message(name, slots, timeout_seconds)
                    )
                if check_abort is not None:
                    check_abort()
                clock.sleep(next_wait(attempt, rng, remaining))
                attempt += 1
            holding.held.append(
                holding.renewer.hold(store, name, holding.lease_id, lease_seconds, clock)
            )
    except BaseException:
        holding.release()
        raise
    return holding


def consume_rate(
    store: ConcurrencyStore,
    names: Sequence[str],
    slots: int,
    *,
    clock: Clock,
    rng: Callable[[], float],
    timeout_seconds: float | None = None,
) -> None:
    """Take `slots` of each rate limit in `names`, waiting for them to decay when full."""
    start = clock.now()
    for name in names:
        attempt = 0
        while not store.try_consume_rate(name, slots, clock.now()):
            remaining = _remaining(clock, start, timeout_seconds)
            if remaining is not None and remaining <= 0:
                raise AcquireConcurrencySlotTimeout(_timeout_message(name, slots, timeout_seconds))
            clock.sleep(next_wait(attempt, rng, remaining))
            attempt += 1


def _remaining(clock: Clock, start: datetime, timeout_seconds: float | None) -> float | None:
    if timeout_seconds is None:
        return None
    return timeout_seconds - (clock.now() - start).total_seconds()


def _timeout_message(name: str, slots: int, timeout_seconds: float | None) -> str:
    return (
        f"Timed out after {timeout_seconds:g} second(s) waiting for {slots} slot(s) of "
        f"concurrency limit {name!r}. Raise timeout_seconds (None waits as long as needed) "
        "or the limit (update_concurrency_limit)."
    )
