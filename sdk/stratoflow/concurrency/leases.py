"""Keeping held leases alive: one daemon thread per process renews every held lease.

A holder registers each lease it takes (`LeaseRenewer.hold`) and drops it on release.
The thread, started on the first `hold`, renews every registered lease every
`lease_seconds / 3` seconds (the shortest lease held sets the pace), so a lease only
expires when its process stopped renewing it - it died, or it was cut off from the store
for two thirds of a lease. Expiry times come from each lease's Clock; the renewal pace is
real time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from stratoflow.clock import Clock
from stratoflow.concurrency.store import ConcurrencyStore

logger = logging.getLogger("stratoflow.concurrency")

RENEWALS_PER_LEASE = 3


@dataclass(eq=False)
class HeldLease:
    """A registered lease. `lost` turns True when a renewal found the lease gone."""

    store: ConcurrencyStore
    name: str
    lease_id: str
    lease_seconds: float
    clock: Clock
    lost: bool = False


class LeaseRenewer:
    def __init__(self, *, autostart: bool = True) -> None:
        self._autostart = autostart
        self._lock = threading.Lock()
        self._held: dict[int, HeldLease] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(
        self,
        store: ConcurrencyStore,
        name: str,
        lease_id: str,
        lease_seconds: float,
        clock: Clock,
    ) -> HeldLease:
        held = HeldLease(store, name, lease_id, lease_seconds, clock)
        with self._lock:
            self._held[id(held)] = held
            if self._autostart and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._run, name="stratoflow-lease-renewer", daemon=True
                )
                self._thread.start()
        self._wake.set()
        return held

    def drop(self, held: HeldLease) -> None:
        with self._lock:
            self._held.pop(id(held), None)

    def held(self) -> list[HeldLease]:
        with self._lock:
            return list(self._held.values())

    def interval(self) -> float | None:
        """Seconds between renewal passes, or None when no lease is held."""
        with self._lock:
            if not self._held:
                return None
            return min(h.lease_seconds for h in self._held.values()) / RENEWALS_PER_LEASE

    def renew_all(self) -> None:
        """One renewal pass over every held lease (the thread calls this; so can tests)."""
        for held in self.held():
            try:
                renewed = held.store.renew(
                    held.name, held.lease_id, held.clock.now(), held.lease_seconds
                )
            except Exception:
                logger.warning(
                    "Could not renew the lease on concurrency limit %r; trying again in %.3g s.",
                    held.name,
                    held.lease_seconds / RENEWALS_PER_LEASE,
                    exc_info=True,
                )
                continue
            if not renewed:
                with self._lock:
                    # Dropped meanwhile: its holder released it (drop comes first), not lost.
                    if self._held.pop(id(held), None) is None:
                        continue
                held.lost = True
                logger.warning(
                    "Lost the lease on concurrency limit %r: it expired before it was renewed "
                    "or the limit was deleted, so its slots may now be used by someone else.",
                    held.name,
                )

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            interval = self.interval()
            if interval is None:
                self._wake.wait()
                self._wake.clear()
                last = time.monotonic()
                continue
            remaining = last + interval - time.monotonic()
            if remaining > 0:
                # A new lease wakes us to recompute the pace; the schedule (`last`) is kept,
                # so a steady stream of new leases cannot postpone renewals.
                if self._wake.wait(remaining):
                    self._wake.clear()
                continue
            self.renew_all()
            last = time.monotonic()


_renewer: LeaseRenewer | None = None
_renewer_lock = threading.Lock()


def get_renewer() -> LeaseRenewer:
    """The process's renewer (created on first use)."""
    global _renewer
    if _renewer is None:
        with _renewer_lock:
            if _renewer is None:
                _renewer = LeaseRenewer()
    return _renewer


def _after_fork_in_child() -> None:
    # The parent's thread and leases do not belong to a forked child.
    global _renewer, _renewer_lock
    _renewer = None
    _renewer_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
