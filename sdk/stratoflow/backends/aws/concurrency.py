"""Concurrency limits in DynamoDB: one item per limit at `CONCURRENCY#<name>` / `META`.

The item holds the limit's settings, its leases (`leases`: a map lease id -> {slots,
expires}), the rate counter (`decayed_slots` as of `decay_updated_at`) and a `version`.
Taking slots is optimistic: read the item (consistently), apply the same pure rules as
the memory store (`ConcurrencyLimit.plan_acquire`: drop expired leases, check capacity,
add the lease), and write the result only if `version` is still the one read; when
another holder got there first, read again. Renewing and releasing are single
conditional updates on the lease's presence. Every change increments `version`, so a
write never brings back a lease that was renewed, released or reclaimed meanwhile.

Times are epoch seconds (exact to the microsecond). Throttling and 5xx errors are retried
by botocore (see `clients.py`), never here.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.concurrency.errors import ConcurrencyLimitExists, ConcurrencyLimitNotFound
from stratoflow.concurrency.store import (
    ConcurrencyLimit,
    ConcurrencyStore,
    Lease,
    exists_message,
    validate_limit_settings,
    validate_slots,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ENTITY = "concurrency_limit"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONDITION_FAILED = "ConditionalCheckFailedException"

# Attribute names (several are DynamoDB reserved words, so expressions use #names).
_NAMES = {
    "#limit": "limit",
    "#active": "active",
    "#decay": "slot_decay_per_second",
    "#leases": "leases",
    "#decayed": "decayed_slots",
    "#decay_at": "decay_updated_at",
    "#version": "version",
}


class DynamoConcurrencyStore(ConcurrencyStore):
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    # Limits

    def create(
        self,
        name: str,
        limit: int,
        *,
        slot_decay_per_second: float = 0.0,
        active: bool = True,
    ) -> ConcurrencyLimit:
        created = ConcurrencyLimit.new(name, limit, slot_decay_per_second, active)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_to_item(created),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": resources.PARTITION_KEY},
            )
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                raise ConcurrencyLimitExists(exists_message(name)) from None
            raise
        return created

    def read(self, name: str) -> ConcurrencyLimit | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=_key(name), ConsistentRead=True
        ).get("Item")
        return _from_item(item) if item is not None else None

    def list(self) -> builtins.list[ConcurrencyLimit]:
        # Limits are few and listing them is rare: a filtered Scan of the table.
        prefix = resources.concurrency_key("")[resources.PARTITION_KEY]
        limits: builtins.list[ConcurrencyLimit] = []
        own = OwnItems("concurrency limit", _limit_key)
        for page in self.client.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="begins_with(#pk, :prefix) AND #sk = :meta AND #entity = :entity",
            ExpressionAttributeNames={
                "#pk": resources.PARTITION_KEY,
                "#sk": resources.SORT_KEY,
                "#entity": "entity",
            },
            ExpressionAttributeValues={
                ":prefix": {"S": prefix},
                ":meta": {"S": resources.META},
                ":entity": {"S": ENTITY},
            },
            ConsistentRead=True,
        ):
            limits.extend(_from_item(item) for item in own(page.get("Items", [])))
        own.close()
        return sorted(limits, key=lambda limit: limit.name)

    def update(
        self,
        name: str,
        *,
        limit: int | None = None,
        active: bool | None = None,
        slot_decay_per_second: float | None = None,
    ) -> ConcurrencyLimit:
        validate_limit_settings(name, limit, slot_decay_per_second)
        sets = ["#version = #version + :one"]
        values: dict[str, Any] = {":one": {"N": "1"}}
        if limit is not None:
            sets.append("#limit = :limit")
            values[":limit"] = {"N": str(limit)}
        if active is not None:
            sets.append("#active = :active")
            values[":active"] = {"BOOL": bool(active)}
        if slot_decay_per_second is not None:
            sets.append("#decay = :decay")
            values[":decay"] = {"N": _number(float(slot_decay_per_second))}
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=_key(name),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(#version)",
                ExpressionAttributeNames=_names(sets),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                raise ConcurrencyLimitNotFound(
                    f"Concurrency limit {name!r} does not exist."
                ) from None
            raise
        return _from_item(response["Attributes"])

    def delete(self, name: str) -> bool:
        response = self.client.delete_item(
            TableName=self.table_name, Key=_key(name), ReturnValues="ALL_OLD"
        )
        return "Attributes" in response

    # Slots

    def _try_acquire_one(
        self, name: str, slots: int, lease_id: str, now: datetime, lease_seconds: float
    ) -> bool:
        while True:
            current = self.read(name)
            if current is None or not current.active:
                return True
            planned = current.plan_acquire(slots, lease_id, now, lease_seconds)
            if planned is None:
                return False
            if self._write_usage(planned, seen_version=current.version):
                return True

    def try_consume_rate(self, name: str, slots: int, now: datetime) -> bool:
        validate_slots(slots)
        while True:
            current = self.read(name)
            if current is None or not current.active:
                return True
            planned = current.plan_consume_rate(slots, now)
            if planned is None:
                return False
            if self._write_usage(planned, seen_version=current.version):
                return True

    def renew(self, name: str, lease_id: str, now: datetime, lease_seconds: float) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(name),
                UpdateExpression="SET #leases.#id.#expires = :expires, #version = #version + :one",
                ConditionExpression="attribute_exists(#leases.#id)",
                ExpressionAttributeNames={
                    "#leases": "leases",
                    "#id": lease_id,
                    "#expires": "expires",
                    "#version": "version",
                },
                ExpressionAttributeValues={
                    ":expires": {"N": _epoch(now + timedelta(seconds=lease_seconds))},
                    ":one": {"N": "1"},
                },
            )
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True

    def release(self, name: str, lease_id: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(name),
                UpdateExpression="REMOVE #leases.#id SET #version = #version + :one",
                ConditionExpression="attribute_exists(#leases.#id)",
                ExpressionAttributeNames={
                    "#leases": "leases",
                    "#id": lease_id,
                    "#version": "version",
                },
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except ClientError as exc:
            if _code(exc) != _CONDITION_FAILED:
                raise

    def _write_usage(self, planned: ConcurrencyLimit, *, seen_version: int) -> bool:
        """Write the leases and the rate counter if nobody changed the item since it was
        read; False when somebody did (the caller reads again)."""
        sets = [
            "#leases = :leases",
            "#decayed = :decayed",
            "#version = :next",
        ]
        values: dict[str, Any] = {
            ":leases": _leases_attribute(planned.leases),
            ":decayed": {"N": _number(planned.decayed_slots)},
            ":next": {"N": str(planned.version)},
            ":seen": {"N": str(seen_version)},
        }
        if planned.decay_updated_at is not None:
            sets.append("#decay_at = :decay_at")
            values[":decay_at"] = {"N": _epoch(planned.decay_updated_at)}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(planned.name),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="#version = :seen",
                ExpressionAttributeNames=_names(sets),
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True


# Items


def _key(name: str) -> dict[str, Any]:
    return {k: {"S": v} for k, v in resources.concurrency_key(name).items()}


def _limit_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    # `_from_item` takes the limit's name from this attribute.
    return resources.concurrency_key(string_attribute(item, "name"))


def _names(expressions: builtins.list[str]) -> dict[str, str]:
    used = {token for expression in expressions for token in expression.split() if token[0] == "#"}
    return {name: attribute for name, attribute in _NAMES.items() if name in used}


def _to_item(limit: ConcurrencyLimit) -> dict[str, Any]:
    item: dict[str, Any] = {k: {"S": v} for k, v in resources.concurrency_key(limit.name).items()}
    item.update(
        {
            "entity": {"S": ENTITY},
            "name": {"S": limit.name},
            "limit": {"N": str(limit.limit)},
            "active": {"BOOL": limit.active},
            "slot_decay_per_second": {"N": _number(limit.slot_decay_per_second)},
            "leases": _leases_attribute(limit.leases),
            "decayed_slots": {"N": _number(limit.decayed_slots)},
            "version": {"N": str(limit.version)},
        }
    )
    if limit.decay_updated_at is not None:
        item["decay_updated_at"] = {"N": _epoch(limit.decay_updated_at)}
    return item


def _from_item(item: dict[str, Any]) -> ConcurrencyLimit:
    leases = tuple(
        Lease(
            lease_id=lease_id,
            slots=int(Decimal(value["M"]["slots"]["N"])),
            expires=_moment(value["M"]["expires"]["N"]),
        )
        for lease_id, value in sorted(item.get("leases", {}).get("M", {}).items())
    )
    decay_at = item.get("decay_updated_at")
    return ConcurrencyLimit(
        name=item["name"]["S"],
        limit=int(Decimal(item["limit"]["N"])),
        active=bool(item["active"]["BOOL"]),
        slot_decay_per_second=float(Decimal(item["slot_decay_per_second"]["N"])),
        leases=leases,
        decayed_slots=float(Decimal(item.get("decayed_slots", {"N": "0"})["N"])),
        decay_updated_at=_moment(decay_at["N"]) if decay_at else None,
        version=int(Decimal(item["version"]["N"])),
    )


def _leases_attribute(leases: tuple[Lease, ...]) -> dict[str, Any]:
    return {
        "M": {
            lease.lease_id: {
                "M": {"slots": {"N": str(lease.slots)}, "expires": {"N": _epoch(lease.expires)}}
            }
            for lease in leases
        }
    }


def _number(value: float) -> str:
    """A float as a plain decimal DynamoDB number (rounded to 1e-9: counters and rates)."""
    return format(Decimal(repr(round(value, 9))), "f")


def _epoch(moment: datetime) -> str:
    """Epoch seconds, exact to the microsecond."""
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return format(Decimal(micros).scaleb(-6), "f")


def _moment(epoch: str) -> datetime:
    return _EPOCH + timedelta(microseconds=int(Decimal(epoch).scaleb(6)))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
