"""The two DynamoDB items of a concurrency limit, and their conversion.

- the **definition**, `CONCURRENCYLIMIT#<name>` / `META`: `limit`, `active`,
  `slot_decay_per_second` and a `version` bumped by every operator change. Worker roles
  cannot write this partition (docs/security.md), so what it says is the operator's.
- the **usage**, `CONCURRENCY#<name>` / `META`: `leases` (lease id -> {slots, expires}),
  the rate counter (`decayed_slots` as of `decay_updated_at`) and a `version` bumped by
  every write. Worker roles write it, so its content is untrusted: it is parsed
  defensively and never read for a definition field.

Before the split (0.x installations) one `CONCURRENCY#<name>` item held both; its
definition fields are now ignored except by the operator's `update`, which migrates
them (`legacy_definition`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from stratoflow import resources
from stratoflow.backends.aws.own_keys import string_attribute
from stratoflow.concurrency.store import ConcurrencyLimit, Lease

ENTITY = "concurrency_limit"
USAGE_ENTITY = "concurrency_usage"
LEGACY_FIELDS = ("limit", "active", "slot_decay_per_second")
"""Definition fields an item of the old layout carries in the usage item."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

UNREADABLE = (KeyError, TypeError, ValueError, ArithmeticError, InvalidOperation)
"""What parsing a usage item a worker may have forged can raise (a missing attribute, a
wrong type, a number that is not one)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """The usage item as read; `version` None when there is no item yet."""

    leases: tuple[Lease, ...] = ()
    decayed_slots: float = 0.0
    decay_updated_at: datetime | None = None
    version: int | None = None


def low_level(key: Mapping[str, str]) -> dict[str, Any]:
    return {k: {"S": v} for k, v in key.items()}


def definition_key(name: str) -> dict[str, Any]:
    return low_level(resources.concurrency_limit_key(name))


def usage_key(name: str) -> dict[str, Any]:
    return low_level(resources.concurrency_key(name))


def own_definition_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    # `definition_from_item` takes the limit's name from this attribute.
    return resources.concurrency_limit_key(string_attribute(item, "name"))


def definition_to_item(limit: ConcurrencyLimit) -> dict[str, Any]:
    item = definition_key(limit.name)
    item.update(
        {
            "entity": {"S": ENTITY},
            "name": {"S": limit.name},
            "limit": {"N": str(limit.limit)},
            "active": {"BOOL": limit.active},
            "slot_decay_per_second": {"N": number(limit.slot_decay_per_second)},
            "version": {"N": "0"},
        }
    )
    return item


def combine(definition: Mapping[str, Any], usage: Usage) -> ConcurrencyLimit:
    """The limit as the pure rules see it. Its `version` is the sum of both items'
    versions: it changes whenever either does (the store conditions on each separately)."""
    return ConcurrencyLimit(
        name=definition["name"]["S"],
        limit=int(Decimal(definition["limit"]["N"])),
        active=bool(definition["active"]["BOOL"]),
        slot_decay_per_second=float(Decimal(definition["slot_decay_per_second"]["N"])),
        leases=usage.leases,
        decayed_slots=usage.decayed_slots,
        decay_updated_at=usage.decay_updated_at,
        version=int(Decimal(definition["version"]["N"])) + (usage.version or 0),
    )


def usage_from_item(item: Mapping[str, Any] | None) -> Usage:
    """Parse a usage item; raises one of UNREADABLE when it is malformed (forged)."""
    if item is None:
        return Usage()
    leases = []
    for lease_id, value in sorted(item.get("leases", {"M": {}})["M"].items()):
        slots = int(Decimal(value["M"]["slots"]["N"]))
        expires = moment(value["M"]["expires"]["N"])
        # A lease of no or negative slots would raise the limit for everybody else.
        if slots < 1:
            raise ValueError(f"lease {lease_id!r} holds {slots} slot(s)")
        leases.append(Lease(lease_id=str(lease_id), slots=slots, expires=expires))
    decayed = float(Decimal(item.get("decayed_slots", {"N": "0"})["N"]))
    if not decayed >= 0:
        raise ValueError(f"decayed_slots={decayed}")
    decay_at = item.get("decay_updated_at")
    version = int(Decimal(item["version"]["N"]))
    return Usage(
        leases=tuple(leases),
        decayed_slots=decayed,
        decay_updated_at=moment(decay_at["N"]) if decay_at else None,
        version=version,
    )


def legacy_definition(name: str, usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The definition item an old-layout usage item describes, or None (not one, or
    unreadable). Only the operator's `update` uses it, to migrate."""
    if usage is None or not all(field in usage for field in LEGACY_FIELDS):
        return None
    try:
        limit = ConcurrencyLimit.new(
            name,
            int(Decimal(usage["limit"]["N"])),
            float(Decimal(usage["slot_decay_per_second"]["N"])),
            bool(usage["active"]["BOOL"]),
        )
    except UNREADABLE:
        return None
    return definition_to_item(limit)


def leases_attribute(leases: tuple[Lease, ...]) -> dict[str, Any]:
    return {
        "M": {
            lease.lease_id: {
                "M": {"slots": {"N": str(lease.slots)}, "expires": {"N": epoch(lease.expires)}}
            }
            for lease in leases
        }
    }


def number(value: float) -> str:
    """A float as a plain decimal DynamoDB number (rounded to 1e-9: counters and rates)."""
    return format(Decimal(repr(round(value, 9))), "f")


def epoch(value: datetime) -> str:
    """Epoch seconds, exact to the microsecond."""
    delta = value - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return format(Decimal(micros).scaleb(-6), "f")


def moment(value: str) -> datetime:
    return _EPOCH + timedelta(microseconds=int(Decimal(value).scaleb(6)))
