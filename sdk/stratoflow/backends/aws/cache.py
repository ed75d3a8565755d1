"""The task cache in DynamoDB: `CACHE#<key>` items with a TTL.

DynamoDB deletes expired items lazily (up to days later), so expiry is also checked on
every read.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.backends.aws.items import from_item, result_to_map, to_item
from stratoflow.backends.aws.result_refs import ResultRefs, cache_entry_owner
from stratoflow.cache import CacheEntry, CacheStore
from stratoflow.exceptions import ObjectNotFound, ResultRefused
from stratoflow.results import PickleSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


logger = logging.getLogger(__name__)


class DynamoCacheStore(CacheStore):
    def __init__(self, client: DynamoDBClient, table: str, results: ResultRefs) -> None:
        self.client = client
        self.table = table
        self.results = results

    def _key(self, key: str) -> dict[str, Any]:
        return to_item(resources.cache_key(key))

    def _read(self, key: str) -> CacheEntry | None:
        item = self.client.get_item(
            TableName=self.table, Key=self._key(key), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        raw = from_item(item)
        result = self.results.from_map(raw.get("result"), cache_entry_owner(key))
        if result is None:
            return None
        if result.refused is not None:
            # A miss: the task computes its result again and overwrites the entry, so
            # refusing loses nothing, and a forged entry cannot fail every run that
            # shares its key.
            logger.warning("Cache entry ignored (treated as a miss): %s", result.refused)
            return None
        if result.serializer == PickleSerializer.name:
            try:
                result.verify()  # reads the bytes once more on a hit; JSON entries do not
            except ResultRefused as exc:
                logger.warning("Cache entry ignored (treated as a miss): %s", exc)
                return None
            except ObjectNotFound:
                return None  # its result was deleted: a miss, as CacheEntry.exists() says
        expiration = raw.get("expiration")
        return CacheEntry(
            key=key,
            result=result,
            expiration=datetime.fromisoformat(expiration) if expiration else None,
            task_run_id=raw.get("task_run_id"),
        )

    def put(self, entry: CacheEntry) -> None:
        values: dict[str, Any] = {
            **resources.cache_key(entry.key),
            "entity": "cache",
            "result": result_to_map(entry.result),
            "task_run_id": entry.task_run_id,
        }
        if entry.expiration is not None:
            values["expiration"] = entry.expiration.isoformat()
            values[resources.TTL_ATTRIBUTE] = int(entry.expiration.timestamp())
        self.client.put_item(TableName=self.table, Item=to_item(values))

    def delete(self, key: str) -> None:
        self.client.delete_item(TableName=self.table, Key=self._key(key))
