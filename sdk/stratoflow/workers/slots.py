"""The poller's concurrency slots: a run holds one slot of its work pool's, work queue's
and deployment's concurrency limits (those that exist) while its process runs.

The limits are ordinary concurrency limits (`stratoflow.concurrency`) named
`work-pool:<pool>`, `work-queue:<pool>/<queue>` and `deployment:<name>`; deploying a
project creates them from `concurrency_limit` in `stratoflow.yaml`. The worker holds the
slots as a lease that it renews, so the slots of a worker that died come back when the
lease expires.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from stratoflow.clock import Clock
from stratoflow.concurrency._acquire import LeaseHolding
from stratoflow.concurrency.leases import LeaseRenewer, get_renewer
from stratoflow.concurrency.store import ConcurrencyStore
from stratoflow.deployments.deploy import work_pool_limit_name, work_queue_limit_name

__all__ = ["Full", "Slots", "work_pool_limit_name", "work_queue_limit_name"]


Full = Literal["pool", "deployment"]


class Slots:
    """Reads and takes slots of limits; whether a limit exists is cached for `cache_for`
    seconds (limits are created and deleted rarely, runs start often)."""

    def __init__(
        self,
        store: ConcurrencyStore,
        clock: Clock,
        *,
        lease_seconds: float,
        cache_for: float = 30.0,
        renewer: LeaseRenewer | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.cache_for = timedelta(seconds=cache_for)
        self.renewer = renewer
        self._exists: dict[str, tuple[bool, datetime]] = {}

    def exists(self, name: str) -> bool:
        now = self.clock.now()
        cached = self._exists.get(name)
        if cached is not None and now - cached[1] < self.cache_for:
            return cached[0]
        limit = self.store.read(name)
        found = limit is not None and limit.active
        self._exists[name] = (found, now)
        return found

    def free(self, name: str) -> int | None:
        """Free slots of the limit (None: there is no such limit, nothing limits)."""
        if not self.exists(name):
            return None
        limit = self.store.read(name)
        if limit is None or not limit.active:
            return None
        return max(limit.limit - limit.leased_slots(self.clock.now()), 0)

    def take(self, pool_names: Sequence[str], deployment_name: str | None) -> LeaseHolding | Full:
        """One slot of each existing limit in `pool_names`, then of `deployment_name`;
        what was full when a slot was not free (nothing is held then)."""
        holding = LeaseHolding(self.store, uuid.uuid4().hex, self.renewer or get_renewer())
        names = sorted(n for n in pool_names if self.exists(n))
        if names and not self._take(holding, names):
            return "pool"
        limited = deployment_name is not None and self.exists(deployment_name)
        if limited and deployment_name and not self._take(holding, [deployment_name]):
            holding.release()
            return "deployment"
        return holding

    def _take(self, holding: LeaseHolding, names: list[str]) -> bool:
        now = self.clock.now()
        if not self.store.try_acquire(names, 1, holding.lease_id, now, self.lease_seconds):
            return False
        for name in names:
            holding.held.append(
                holding.renewer.hold(
                    self.store, name, holding.lease_id, self.lease_seconds, self.clock
                )
            )
        return True
