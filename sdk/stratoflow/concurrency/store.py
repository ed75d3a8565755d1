"""Concurrency limits and where they live.

A limit has `limit` slots. Slots are taken in two ways:

- as a **lease** (`with concurrency(...)`, tag limits): the holder's slots count until it
  releases them or until the lease expires; the holder renews the lease while it runs, so
  a lease only expires when its holder died;
- as **rate** slots (`rate_limit(...)`, limits with `slot_decay_per_second > 0`): a counter
  that is never released but decays at `slot_decay_per_second`.

Both count against the same `limit`. The arithmetic lives in pure functions on
`ConcurrencyLimit` (`plan_acquire`, ...) so that every store applies exactly the same
rules; a store only has to make "read, plan, write" atomic.
"""

from __future__ import annotations

import builtins
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from stratoflow.concurrency.errors import ConcurrencyLimitExists, ConcurrencyLimitNotFound

_EPSILON = 1e-9
"""Tolerance of the decay arithmetic (microsecond timestamps and float rates)."""


@dataclass(frozen=True, slots=True)
class Lease:
    """Slots held by one holder (`lease_id`) until `expires` unless renewed."""

    lease_id: str
    slots: int
    expires: datetime

    def is_expired(self, now: datetime) -> bool:
        return self.expires <= now


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """A snapshot of one limit, with the leases it held when it was read."""

    name: str
    limit: int
    active: bool = True
    slot_decay_per_second: float = 0.0
    leases: tuple[Lease, ...] = ()
    decayed_slots: float = 0.0
    """The rate counter as of `decay_updated_at` (see `decayed_slots_at`)."""
    decay_updated_at: datetime | None = None
    version: int = 0
    """Incremented by every change; stores use it for optimistic concurrency."""

    @property
    def is_rate_limit(self) -> bool:
        return self.slot_decay_per_second > 0

    @classmethod
    def new(
        cls, name: str, limit: int, slot_decay_per_second: float = 0.0, active: bool = True
    ) -> ConcurrencyLimit:
        """A new limit with no leases, its settings checked."""
        validate_limit_settings(name, limit, slot_decay_per_second)
        return cls(
            name=name,
            limit=limit,
            active=bool(active),
            slot_decay_per_second=float(slot_decay_per_second),
        )

    def live_leases(self, now: datetime) -> tuple[Lease, ...]:
        return tuple(lease for lease in self.leases if not lease.is_expired(now))

    def leased_slots(self, now: datetime) -> int:
        return sum(lease.slots for lease in self.live_leases(now))

    def decayed_slots_at(self, now: datetime) -> float:
        """The rate counter at `now`: it falls by `slot_decay_per_second` every second."""
        if not self.is_rate_limit or self.decay_updated_at is None:
            return 0.0
        elapsed = max((now - self.decay_updated_at).total_seconds(), 0.0)
        return max(self.decayed_slots - elapsed * self.slot_decay_per_second, 0.0)

    def used_slots(self, now: datetime) -> float:
        return self.leased_slots(now) + self.decayed_slots_at(now)

    def available_slots(self, now: datetime) -> float:
        return max(self.limit - self.used_slots(now), 0.0)

    # Pure transitions: the new snapshot, or None when the change cannot be made.

    def plan_acquire(
        self, slots: int, lease_id: str, now: datetime, lease_seconds: float
    ) -> ConcurrencyLimit | None:
        """Drop expired leases and add `slots` under `lease_id`, if they are free."""
        live = self.live_leases(now)
        decayed = self.decayed_slots_at(now)
        used = sum(lease.slots for lease in live) + decayed
        if used + slots > self.limit + _EPSILON:
            return None
        held = sum(lease.slots for lease in live if lease.lease_id == lease_id)
        lease = Lease(lease_id, held + slots, now + timedelta(seconds=lease_seconds))
        others = tuple(existing for existing in live if existing.lease_id != lease_id)
        return replace(
            self,
            leases=(*others, lease),
            decayed_slots=decayed,
            decay_updated_at=now if self.is_rate_limit else self.decay_updated_at,
            version=self.version + 1,
        )

    def plan_consume_rate(self, slots: int, now: datetime) -> ConcurrencyLimit | None:
        """Add `slots` to the decaying counter, if they are free."""
        if not self.is_rate_limit:
            raise ValueError(rate_limit_without_decay_message(self.name))
        live = self.live_leases(now)
        decayed = self.decayed_slots_at(now)
        if sum(lease.slots for lease in live) + decayed + slots > self.limit + _EPSILON:
            return None
        return replace(
            self,
            leases=live,
            decayed_slots=decayed + slots,
            decay_updated_at=now,
            version=self.version + 1,
        )

    def plan_renew(
        self, lease_id: str, now: datetime, lease_seconds: float
    ) -> ConcurrencyLimit | None:
        """Extend the lease; None when it is gone (released, or expired and reclaimed)."""
        if not any(lease.lease_id == lease_id for lease in self.leases):
            return None
        expires = now + timedelta(seconds=lease_seconds)
        return replace(
            self,
            leases=tuple(
                replace(lease, expires=expires) if lease.lease_id == lease_id else lease
                for lease in self.leases
            ),
            version=self.version + 1,
        )

    def plan_release(self, lease_id: str) -> ConcurrencyLimit | None:
        if not any(lease.lease_id == lease_id for lease in self.leases):
            return None
        return replace(
            self,
            leases=tuple(lease for lease in self.leases if lease.lease_id != lease_id),
            version=self.version + 1,
        )


def rate_limit_without_decay_message(name: str) -> str:
    return (
        f"Concurrency limit {name!r} has no slot decay (slot_decay_per_second=0), so the "
        "slots taken by rate_limit() would never come back. Make it a rate limit with "
        f"update_concurrency_limit({name!r}, slot_decay_per_second=<slots per second>), "
        f"or hold slots for a block with `with concurrency({name!r}):`."
    )


def validate_limit_settings(
    name: str, limit: int | None, slot_decay_per_second: float | None
) -> None:
    """Raise ValueError for a limit that cannot work (checked by every store)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"A concurrency limit needs a non-empty string name, got {name!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(
            f"Concurrency limit {name!r}: limit={limit!r} must be a whole number of slots "
            ">= 1, e.g. limit=5."
        )
    if slot_decay_per_second is not None and (
        isinstance(slot_decay_per_second, bool)
        or not isinstance(slot_decay_per_second, int | float)
        or not math.isfinite(slot_decay_per_second)
        or slot_decay_per_second < 0
    ):
        raise ValueError(
            f"Concurrency limit {name!r}: slot_decay_per_second={slot_decay_per_second!r} "
            "must be a number >= 0 (0 for a concurrency limit, > 0 for a rate limit)."
        )


def validate_slots(slots: int) -> None:
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ValueError(f"occupy={slots!r} must be a whole number of slots >= 1.")


class ConcurrencyStore(ABC):
    """Where limits and their leases live. Every method is safe to call from any thread
    (and, for shared stores, from any process)."""

    # Limits

    @abstractmethod
    def create(
        self,
        name: str,
        limit: int,
        *,
        slot_decay_per_second: float = 0.0,
        active: bool = True,
    ) -> ConcurrencyLimit:
        """Create a limit; raises ConcurrencyLimitExists when `name` already has one."""

    @abstractmethod
    def read(self, name: str) -> ConcurrencyLimit | None: ...

    @abstractmethod
    def list(self) -> builtins.list[ConcurrencyLimit]:
        """Every limit, sorted by name."""

    @abstractmethod
    def update(
        self,
        name: str,
        *,
        limit: int | None = None,
        active: bool | None = None,
        slot_decay_per_second: float | None = None,
    ) -> ConcurrencyLimit:
        """Change the given fields (leases are kept); raises ConcurrencyLimitNotFound."""

    @abstractmethod
    def delete(self, name: str) -> bool:
        """Delete a limit and its leases; False when there was none."""

    # Slots

    def try_acquire(
        self,
        names: Sequence[str],
        slots: int,
        lease_id: str,
        now: datetime,
        lease_seconds: float,
    ) -> bool:
        """Take `slots` of each limit under `lease_id`, one name at a time in the given order.

        Returns False (and gives back what this call took) when one of them is full. A
        missing or inactive limit does not limit: it counts as acquired, without a lease.
        """
        validate_slots(slots)
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds={lease_seconds!r} must be > 0.")
        taken: builtins.list[str] = []
        for name in (names,) if isinstance(names, str) else names:
            if not self._try_acquire_one(name, slots, lease_id, now, lease_seconds):
                for held in reversed(taken):
                    self.release(held, lease_id)
                return False
            taken.append(name)
        return True

    @abstractmethod
    def _try_acquire_one(
        self, name: str, slots: int, lease_id: str, now: datetime, lease_seconds: float
    ) -> bool: ...

    @abstractmethod
    def renew(self, name: str, lease_id: str, now: datetime, lease_seconds: float) -> bool:
        """Extend a lease to `now + lease_seconds`; False when the lease is gone."""

    @abstractmethod
    def release(self, name: str, lease_id: str) -> None:
        """Give back a lease's slots (a lease that is already gone is ignored)."""

    @abstractmethod
    def try_consume_rate(self, name: str, slots: int, now: datetime) -> bool:
        """Take `slots` that decay instead of being released; False when they are not free.

        A missing or inactive limit does not limit (True); a limit without decay raises
        ValueError.
        """


class MemoryConcurrencyStore(ConcurrencyStore):
    """Limits of this process (the default): one lock around a dictionary of snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, ConcurrencyLimit] = {}

    def create(
        self,
        name: str,
        limit: int,
        *,
        slot_decay_per_second: float = 0.0,
        active: bool = True,
    ) -> ConcurrencyLimit:
        created = ConcurrencyLimit.new(name, limit, slot_decay_per_second, active)
        with self._lock:
            if name in self._limits:
                raise ConcurrencyLimitExists(exists_message(name))
            self._limits[name] = created
        return created

    def read(self, name: str) -> ConcurrencyLimit | None:
        with self._lock:
            return self._limits.get(name)

    def list(self) -> builtins.list[ConcurrencyLimit]:
        with self._lock:
            return [self._limits[name] for name in sorted(self._limits)]

    def update(
        self,
        name: str,
        *,
        limit: int | None = None,
        active: bool | None = None,
        slot_decay_per_second: float | None = None,
    ) -> ConcurrencyLimit:
        validate_limit_settings(name, limit, slot_decay_per_second)
        with self._lock:
            current = self._limits.get(name)
            if current is None:
                raise ConcurrencyLimitNotFound(f"Concurrency limit {name!r} does not exist.")
            updated = replace(
                current,
                limit=current.limit if limit is None else limit,
                active=current.active if active is None else bool(active),
                slot_decay_per_second=(
                    current.slot_decay_per_second
                    if slot_decay_per_second is None
                    else float(slot_decay_per_second)
                ),
                version=current.version + 1,
            )
            self._limits[name] = updated
            return updated

    def delete(self, name: str) -> bool:
        with self._lock:
            return self._limits.pop(name, None) is not None

    def _try_acquire_one(
        self, name: str, slots: int, lease_id: str, now: datetime, lease_seconds: float
    ) -> bool:
        with self._lock:
            current = self._limits.get(name)
            if current is None or not current.active:
                return True
            planned = current.plan_acquire(slots, lease_id, now, lease_seconds)
            if planned is None:
                return False
            self._limits[name] = planned
            return True

    def renew(self, name: str, lease_id: str, now: datetime, lease_seconds: float) -> bool:
        with self._lock:
            current = self._limits.get(name)
            planned = current.plan_renew(lease_id, now, lease_seconds) if current else None
            if planned is None:
                return False
            self._limits[name] = planned
            return True

    def release(self, name: str, lease_id: str) -> None:
        with self._lock:
            current = self._limits.get(name)
            planned = current.plan_release(lease_id) if current else None
            if planned is not None:
                self._limits[name] = planned

    def try_consume_rate(self, name: str, slots: int, now: datetime) -> bool:
        validate_slots(slots)
        with self._lock:
            current = self._limits.get(name)
            if current is None or not current.active:
                return True
            planned = current.plan_consume_rate(slots, now)
            if planned is None:
                return False
            self._limits[name] = planned
            return True


def exists_message(name: str) -> str:
    return (
        f"Concurrency limit {name!r} already exists. Change it with "
        f"update_concurrency_limit({name!r}, ...) or delete it first."
    )
