"""The client's concurrency limit methods: `stratoflow.concurrency`.

Prefect 3 keeps a tag's task run limit as the global limit `tag:<tag>`; so does
stratoflow, so the tag methods and the global ones read the same limits.
"""

from __future__ import annotations

from stratoflow.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from stratoflow.concurrency import api as limits
from stratoflow.concurrency.errors import ConcurrencyLimitExists
from stratoflow.concurrency.store import ConcurrencyLimit

TAG_PREFIX = "tag:"


class LimitMethods:
    # Tag limits

    def create_concurrency_limit(self, tag: str, concurrency_limit: int) -> ConcurrencyLimit:
        """Limit the task runs tagged `tag` to `concurrency_limit` at a time; an existing
        limit of the tag is given the new number (as Prefect's server does)."""
        return self.upsert_global_concurrency_limit_by_name(TAG_PREFIX + tag, concurrency_limit)

    def read_concurrency_limit_by_tag(self, tag: str) -> ConcurrencyLimit:
        """Raises ConcurrencyLimitNotFound (an ObjectNotFound)."""
        return limits.read_concurrency_limit(TAG_PREFIX + tag)

    def read_concurrency_limits(self, limit: int, offset: int) -> list[ConcurrencyLimit]:
        """The tag limits, by name."""
        tagged = [
            found for found in limits.list_concurrency_limits() if found.name.startswith(TAG_PREFIX)
        ]
        return tagged[offset : offset + limit]

    def delete_concurrency_limit_by_tag(self, tag: str) -> None:
        limits.delete_concurrency_limit(TAG_PREFIX + tag)

    # Global limits

    def create_global_concurrency_limit(
        self, concurrency_limit: GlobalConcurrencyLimitCreate
    ) -> ConcurrencyLimit:
        """Raises ConcurrencyLimitExists when the name is taken."""
        return limits.create_concurrency_limit(
            concurrency_limit.name,
            concurrency_limit.limit,
            slot_decay_per_second=concurrency_limit.slot_decay_per_second,
            active=concurrency_limit.active,
        )

    def read_global_concurrency_limit_by_name(self, name: str) -> ConcurrencyLimit:
        return limits.read_concurrency_limit(name)

    def read_global_concurrency_limits(
        self, limit: int = 10, offset: int = 0
    ) -> list[ConcurrencyLimit]:
        """Every limit, by name."""
        return limits.list_concurrency_limits()[offset : offset + limit]

    def update_global_concurrency_limit(
        self, name: str, concurrency_limit: GlobalConcurrencyLimitUpdate
    ) -> ConcurrencyLimit:
        return limits.update_concurrency_limit(
            name,
            limit=concurrency_limit.limit,
            active=concurrency_limit.active,
            slot_decay_per_second=concurrency_limit.slot_decay_per_second,
        )

    def delete_global_concurrency_limit_by_name(self, name: str) -> None:
        limits.delete_concurrency_limit(name)

    def upsert_global_concurrency_limit_by_name(
        self, name: str, limit: int, slot_decay_per_second: float | None = None
    ) -> ConcurrencyLimit:
        """Create the limit, or give an existing one this `limit` (and decay, when given)."""
        try:
            return limits.create_concurrency_limit(
                name, limit, slot_decay_per_second=slot_decay_per_second or 0.0
            )
        except ConcurrencyLimitExists:
            return limits.update_concurrency_limit(
                name, limit=limit, slot_decay_per_second=slot_decay_per_second
            )
