"""Concurrency limits in DynamoDB: a definition item and a usage item per limit.

The definition (`CONCURRENCYLIMIT#<name>` / `META`: limit, active, decay) is written by
operators only; the usage (`CONCURRENCY#<name>` / `META`: leases, rate counter, version)
by holders, i.e. workers (`concurrency_items`; docs/security.md on why they are apart).

Taking slots is optimistic: read both items in one consistent BatchGetItem, apply the
same pure rules as the memory store (`ConcurrencyLimit.plan_acquire`: drop expired
leases, check capacity, add the lease), and write the usage only if its `version` is
still the one read; when another holder got there first, read again. The definition is
only read, never conditioned on: an operator change racing an acquisition orders after
it, exactly as if the acquisition had finished first (held slots stay held when a limit
is lowered), so no holder is ever admitted beyond a limit it read (docs/concurrency.md,
"Where limits live"). Renewing and releasing are single conditional updates on the
lease's presence. Every usage write increments `version`, so a write never brings back a
lease that was renewed, released or reclaimed meanwhile.

Times are epoch seconds (exact to the microsecond). Throttling and 5xx errors are retried
by botocore (see `clients.py`), never here.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws import concurrency_items as items
from stratoflow.backends.aws import concurrency_legacy as legacy
from stratoflow.backends.aws.own_keys import OwnItems
from stratoflow.concurrency.errors import ConcurrencyLimitExists, ConcurrencyLimitNotFound
from stratoflow.concurrency.store import (
    ConcurrencyLimit,
    ConcurrencyStore,
    exists_message,
    validate_limit_settings,
    validate_slots,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ENTITY = items.ENTITY
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
    "#name": "name",
    "#entity": "entity",
}


class DynamoConcurrencyStore(ConcurrencyStore):
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name
        self._warnings = legacy.Warnings()

    # Limits (operators)

    def create(
        self,
        name: str,
        limit: int,
        *,
        slot_decay_per_second: float = 0.0,
        active: bool = True,
    ) -> ConcurrencyLimit:
        created = ConcurrencyLimit.new(name, limit, slot_decay_per_second, active)
        # The usage item is left alone: leases in it are held by live holders (or, of an
        # old-layout limit, by holders from before the upgrade), and its old definition
        # fields are ignored from now on.
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=items.definition_to_item(created),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": resources.PARTITION_KEY},
            )
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                raise ConcurrencyLimitExists(exists_message(name)) from None
            raise
        return created

    def read(self, name: str) -> ConcurrencyLimit | None:
        definition, usage = self._read_items(name)
        if definition is None:
            self._warnings.legacy(name, usage)
            return None
        try:
            parsed = items.usage_from_item(usage)
        except items.UNREADABLE:
            self._warnings.unreadable(name)
            parsed = items.Usage()
        return items.combine(definition, parsed)

    def list(self) -> builtins.list[ConcurrencyLimit]:
        # Limits are few and listing them is rare: a filtered Scan of both partitions.
        definitions: builtins.list[dict[str, Any]] = []
        usages: dict[str, dict[str, Any]] = {}
        own = OwnItems("concurrency limit", items.own_definition_key)
        for page in self.client.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="(begins_with(#pk, :limits) OR begins_with(#pk, :usages)) "
            "AND #sk = :meta",
            ExpressionAttributeNames={"#pk": resources.PARTITION_KEY, "#sk": resources.SORT_KEY},
            ExpressionAttributeValues={
                ":limits": {"S": _partition(resources.concurrency_limit_key(""))},
                ":usages": {"S": _partition(resources.concurrency_key(""))},
                ":meta": {"S": resources.META},
            },
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                pk = item[resources.PARTITION_KEY]["S"]
                if pk.startswith(_partition(resources.concurrency_limit_key(""))):
                    definitions.extend(own([item]))
                else:
                    usages[pk] = item
        own.close()
        limits = []
        for definition in definitions:
            name = definition["name"]["S"]
            try:
                usage = items.usage_from_item(
                    usages.get(_partition(resources.concurrency_key(name)))
                )
            except items.UNREADABLE:
                self._warnings.unreadable(name)
                usage = items.Usage()
            limits.append(items.combine(definition, usage))
        self._warnings.legacy_listed(usages, {limit.name for limit in limits})
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
            values[":decay"] = {"N": items.number(float(slot_decay_per_second))}
        # Twice at most: the second time after migrating an old-layout limit.
        for _ in range(2):
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=items.definition_key(name),
                    UpdateExpression="SET " + ", ".join(sets),
                    ConditionExpression="attribute_exists(#version)",
                    ExpressionAttributeNames=_names(sets),
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if _code(exc) != _CONDITION_FAILED:
                    raise
                if not legacy.migrate(self.client, self.table_name, name):
                    break
                continue
            updated = self.read(name)
            if updated is not None:
                return updated
        raise ConcurrencyLimitNotFound(f"Concurrency limit {name!r} does not exist.")

    def delete(self, name: str) -> bool:
        # The definition first: from then on nobody is limited, whatever the usage says.
        removed = self.client.delete_item(
            TableName=self.table_name, Key=items.definition_key(name), ReturnValues="ALL_OLD"
        )
        usage = self.client.delete_item(
            TableName=self.table_name, Key=items.usage_key(name), ReturnValues="ALL_OLD"
        ).get("Attributes")
        return removed.get("Attributes") is not None or legacy.is_legacy(usage)

    # Slots (holders)

    def _try_acquire_one(
        self, name: str, slots: int, lease_id: str, now: datetime, lease_seconds: float
    ) -> bool:
        while True:
            found = self._read_for_slots(name)
            if found is None:
                return True
            current, usage = found
            if usage is None:
                return False
            planned = current.plan_acquire(slots, lease_id, now, lease_seconds)
            if planned is None:
                return False
            if self._write_usage(planned, seen=usage.version):
                return True

    def try_consume_rate(self, name: str, slots: int, now: datetime) -> bool:
        validate_slots(slots)
        while True:
            found = self._read_for_slots(name)
            if found is None:
                return True
            current, usage = found
            if usage is None:
                return False
            planned = current.plan_consume_rate(slots, now)
            if planned is None:
                return False
            if self._write_usage(planned, seen=usage.version):
                return True

    def renew(self, name: str, lease_id: str, now: datetime, lease_seconds: float) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=items.usage_key(name),
                UpdateExpression="SET #leases.#id.#expires = :expires, #version = #version + :one",
                ConditionExpression="attribute_exists(#leases.#id)",
                ExpressionAttributeNames={
                    "#leases": "leases",
                    "#id": lease_id,
                    "#expires": "expires",
                    "#version": "version",
                },
                ExpressionAttributeValues={
                    ":expires": {"N": items.epoch(now + timedelta(seconds=lease_seconds))},
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
                Key=items.usage_key(name),
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

    # Helpers

    def _read_items(self, name: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The definition and usage items of `name` (None when missing), read
        consistently in one call; keys DynamoDB leaves unprocessed (throttling) are read
        one by one, which botocore retries."""
        keys = [items.definition_key(name), items.usage_key(name)]
        response = self.client.batch_get_item(
            RequestItems={self.table_name: {"Keys": keys, "ConsistentRead": True}}
        )
        found = {
            item[resources.PARTITION_KEY]["S"]: item
            for item in response.get("Responses", {}).get(self.table_name, [])
        }
        unprocessed = response.get("UnprocessedKeys", {}).get(self.table_name)
        for key in unprocessed["Keys"] if unprocessed else []:
            item = self.client.get_item(
                TableName=self.table_name, Key=key, ConsistentRead=True
            ).get("Item")
            if item is not None:
                found[item[resources.PARTITION_KEY]["S"]] = item
        return (
            found.get(_partition(resources.concurrency_limit_key(name))),
            found.get(_partition(resources.concurrency_key(name))),
        )

    def _read_for_slots(self, name: str) -> tuple[ConcurrencyLimit, items.Usage | None] | None:
        """None when the limit does not limit (missing or inactive); else the limit and
        its usage, the usage None when a worker left it unreadable (the limit is then
        full: the same as a worker holding every slot)."""
        definition, usage_item = self._read_items(name)
        if definition is None:
            self._warnings.legacy(name, usage_item)
            return None
        try:
            usage: items.Usage | None = items.usage_from_item(usage_item)
        except items.UNREADABLE:
            self._warnings.unreadable(name)
            usage = None
        current = items.combine(definition, usage or items.Usage())
        if not current.active:
            return None
        return current, usage

    def _write_usage(self, planned: ConcurrencyLimit, *, seen: int | None) -> bool:
        """Write the leases and the rate counter if nobody changed the usage item since it
        was read (`seen`: its version, None when there was none); False when somebody did
        (the caller reads again)."""
        sets = [
            "#leases = :leases",
            "#decayed = :decayed",
            "#version = :next",
            "#name = :name",
            "#entity = :entity",
        ]
        values: dict[str, Any] = {
            ":leases": items.leases_attribute(planned.leases),
            ":decayed": {"N": items.number(planned.decayed_slots)},
            ":next": {"N": str((seen or 0) + 1)},
            ":name": {"S": planned.name},
            ":entity": {"S": items.USAGE_ENTITY},
        }
        if seen is None:
            condition = "attribute_not_exists(#version)"
        else:
            condition = "#version = :seen"
            values[":seen"] = {"N": str(seen)}
        if planned.decay_updated_at is not None:
            sets.append("#decay_at = :decay_at")
            values[":decay_at"] = {"N": items.epoch(planned.decay_updated_at)}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=items.usage_key(planned.name),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(sets),
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True


def _partition(key: Mapping[str, str]) -> str:
    return key[resources.PARTITION_KEY]


def _names(expressions: builtins.list[str]) -> dict[str, str]:
    used = {token for expression in expressions for token in expression.split() if token[0] == "#"}
    return {name: attribute for name, attribute in _NAMES.items() if name in used}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
