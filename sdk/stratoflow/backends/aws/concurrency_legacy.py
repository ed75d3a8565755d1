"""Limits of the old layout (settings in the usage item) and untrusted usage items:
migrating them on the operator's `update`, and warning about them once per name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws import concurrency_items as items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger("stratoflow.backends.aws.concurrency")
_CONDITION_FAILED = "ConditionalCheckFailedException"
SHOWN_NAMES = 3
SHOWN_CHARACTERS = 120


def migrate(client: DynamoDBClient, table_name: str, name: str) -> bool:
    """Write the definition an old-layout usage item carries and drop those fields from
    it; False when there is none. Only the operator's `update` calls this: the operator
    named the limit, so vouches for the settings (which a worker could have written
    before the upgrade, as it could change them then)."""
    usage = client.get_item(
        TableName=table_name, Key=items.usage_key(name), ConsistentRead=True
    ).get("Item")
    definition = items.legacy_definition(name, usage)
    if definition is None:
        return False
    try:
        client.put_item(
            TableName=table_name,
            Item=definition,
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": resources.PARTITION_KEY},
        )
    except ClientError as exc:
        # Created meanwhile (by another operator): the update applies to that one.
        if str(exc.response.get("Error", {}).get("Code", "")) != _CONDITION_FAILED:
            raise
    # Ignored from now on anyway; removed so that nobody mistakes them for the settings.
    # Conditional, so that a usage item deleted meanwhile is not recreated without a
    # version (which would make the limit count as full).
    try:
        client.update_item(
            TableName=table_name,
            Key=items.usage_key(name),
            UpdateExpression="REMOVE #limit, #active, #decay",
            ConditionExpression="attribute_exists(#version)",
            ExpressionAttributeNames={
                "#limit": "limit",
                "#active": "active",
                "#decay": "slot_decay_per_second",
                "#version": "version",
            },
        )
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) != _CONDITION_FAILED:
            raise
    log.info("Migrated concurrency limit %r to its own definition item.", name)
    return True


def is_legacy(usage: Mapping[str, Any] | None) -> bool:
    return usage is not None and all(field in usage for field in items.LEGACY_FIELDS)


class Warnings:
    """Usage items are worker-writable: one warning per name and store, not per call."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def _once(self, key: str, message: str, *args: object) -> None:
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        log.warning(message, *args)

    def legacy(self, name: str, usage: Mapping[str, Any] | None) -> None:
        if is_legacy(usage):
            self._once(
                f"legacy:{name}",
                "Concurrency limit %r is stored the old way (its settings in the item "
                "workers write), so it does not limit. Migrate it with "
                "update_concurrency_limit(%r) or create it again.",
                name,
                name,
            )

    def legacy_listed(self, usages: Mapping[str, Mapping[str, Any]], listed: set[str]) -> None:
        """One warning per listing: the count and the first few names, cut (a worker may
        write any number of such items, with any names)."""
        names = sorted(
            name
            for usage in usages.values()
            if is_legacy(usage)
            and isinstance(name := usage.get("name", {}).get("S"), str)
            and name not in listed
        )
        if names:
            shown = ", ".join(repr(name[:SHOWN_CHARACTERS]) for name in names[:SHOWN_NAMES])
            more = len(names) - SHOWN_NAMES
            log.warning(
                "%d concurrency limit(s) stored the old way (settings in the item workers "
                "write) do not limit and are not listed: %s%s. Migrate each with "
                "update_concurrency_limit(name) or create it again.",
                len(names),
                shown,
                f" and {more} more" if more > 0 else "",
            )

    def unreadable(self, name: str) -> None:
        self._once(
            f"unreadable:{name}",
            "The usage item of concurrency limit %r is unreadable (not written by "
            "stratoflow: a compromised worker?), so the limit counts as full. Delete and "
            "create the limit again to reset it.",
            name,
        )
