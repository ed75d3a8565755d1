"""SERIALIZABLE transactions across machines: locks as DynamoDB items.

A key's lock is the item `CACHE#<key>` / `LOCK`, beside the key's cache entry
(`CACHE#<key>` / `META`): worker roles may write the cache's partitions already
(`dynamodb:LeadingKeys` bounds the partition key only), so deployed runs can take it. A
conditional put takes it when nobody holds it, its holder takes it again, or its hold
expired; a conditional delete gives it back.

A process that dies holding a lock leaves the item: `hold_timeout` (seconds) makes such
a lock free again (and DynamoDB's TTL deletes the item later). A transaction that runs
longer than `hold_timeout` loses its exclusivity: choose it longer than your longest
transaction.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.cache import DynamoCacheStore
from stratoflow.backends.aws.items import to_item
from stratoflow.cache import CacheStore
from stratoflow.locking import LockManager

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LOCK = "LOCK"
_POLL_SECONDS = 0.2
_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoLockManager(LockManager):
    def __init__(
        self, client: DynamoDBClient, table: str, hold_timeout: float | None = 3600.0
    ) -> None:
        self.client = client
        self.table = table
        self.hold_timeout = hold_timeout

    @classmethod
    def for_cache_store(
        cls, store: CacheStore, hold_timeout: float | None = 3600.0
    ) -> DynamoLockManager:
        """The lock manager beside a `DynamoCacheStore` (`get_services().cache_store` on
        the AWS backend)."""
        if not isinstance(store, DynamoCacheStore):
            raise TypeError(
                f"DynamoLockManager needs the AWS backend's cache store, got {store!r}; "
                "use stratoflow.locking.MemoryLockManager or FileSystemLockManager locally."
            )
        return cls(store.client, store.table, hold_timeout)

    def _key(self, key: str) -> dict[str, Any]:
        return to_item({**resources.cache_key(key), resources.SORT_KEY: LOCK})

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None) -> bool:
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while not self._try_acquire(key, holder):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)
        return True

    def _try_acquire(self, key: str, holder: str) -> bool:
        now = _now_ms()
        values: dict[str, Any] = {
            **resources.cache_key(key),
            resources.SORT_KEY: LOCK,
            "entity": "transaction-lock",
            "holder": holder,
        }
        if self.hold_timeout is not None:
            held_until = now + int(self.hold_timeout * 1000)
            values["held_until_ms"] = held_until
            values[resources.TTL_ATTRIBUTE] = held_until // 1000 + 1
        try:
            self.client.put_item(
                TableName=self.table,
                Item=to_item(values),
                ConditionExpression=(
                    "attribute_not_exists(#pk) OR holder = :holder OR held_until_ms < :now"
                ),
                ExpressionAttributeNames={"#pk": resources.PARTITION_KEY},
                ExpressionAttributeValues=to_item({":holder": holder, ":now": now}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == _CONDITION_FAILED:
                return False
            raise
        return True

    def release_lock(self, key: str, holder: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=self._key(key),
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues=to_item({":holder": holder}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == _CONDITION_FAILED:
                raise ValueError(f"Lock on {key!r} is not held by {holder!r}") from exc
            raise

    def _holder(self, key: str) -> str | None:
        item = self.client.get_item(
            TableName=self.table, Key=self._key(key), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        held_until = item.get("held_until_ms")
        if held_until is not None and int(held_until["N"]) < _now_ms():
            return None
        return str(item["holder"]["S"])

    def is_locked(self, key: str) -> bool:
        return self._holder(key) is not None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        return self._holder(key) == holder


def _now_ms() -> int:
    # Whole milliseconds: DynamoDB numbers from boto3 cannot be floats.
    return int(time.time() * 1000)
