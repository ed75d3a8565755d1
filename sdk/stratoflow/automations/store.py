"""Where automations, their buckets and their firings live.

`AutomationStore` keeps them in the state table (DESIGN §2):
- `AUTOMATION#<id>` / `META`: the definition (JSON), name, enabled, last_fired, last_error;
  listed through the `by_time` index (partition `AUTOMATIONS`, sort key: the name);
  `AUTOMATIONNAME#<name>` / `META` claims the name (same transaction), so names are unique;
- `AUTOMATION#<id>` / `BUCKET#<bucket key>`: counting state, written with a condition on
  its version and on `NOT contains(event_ids, :event)` (TTL `expires_at`); while it needs
  the scheduler tick it is also in the `by_state` index (`AUTOMATIONDUE#<id>` / due time);
- `AUTOMATION#<id>` / `FIRED#<bucket>#<window>`: one per firing, a conditional put (TTL).

`MemoryAutomationStore` (memory.py) does the same in a dict, for unit tests.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.automations.base import (
    BUCKET_TTL,
    FIRING_TTL,
    AutomationRecord,
    BaseAutomationStore,
    DuplicateAutomationName,
    FiringRecord,
    UnknownAutomation,
    duplicate_message,
    expiry,
)
from stratoflow.automations.buckets import (
    Bucket,
    Fire,
    flow_run_of_document,
    parse_time,
    sort_time,
)
from stratoflow.automations.models import Automation
from stratoflow.automations.secrets import AutomationSecrets
from stratoflow.backends.aws.items import from_item, to_attribute, to_item
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.clock import Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "BUCKET_TTL",
    "FIRING_TTL",
    "AutomationRecord",
    "AutomationStore",
    "BaseAutomationStore",
    "DuplicateAutomationName",
    "FiringRecord",
    "UnknownAutomation",
    "duplicate_message",
    "expiry",
]


class AutomationStore(BaseAutomationStore):
    """Automations, buckets and firings in the state table."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        clock: Clock | None = None,
        *,
        secrets: AutomationSecrets | None = None,
    ) -> None:
        super().__init__(clock)
        self.client = client
        self.table = table
        self.secrets = secrets  # `create` moves webhook secrets there; readers pass None

    def create(self, automation: Automation) -> AutomationRecord:
        if self.secrets is None:
            return super().create(automation)
        automation = automation.with_id()
        assert automation.id is not None
        stored = self.secrets.externalize(automation)
        try:
            return super().create(stored)
        except DuplicateAutomationName:
            if stored is not automation:  # its secret was made for this attempt only
                self.secrets.delete(automation.id, now=True)
            raise

    def list(self) -> list[AutomationRecord]:
        index = resources.BY_TIME
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index.name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": index.partition_key},
            "ExpressionAttributeValues": {":p": to_attribute(resources.AUTOMATIONS_PARTITION)},
        }
        records = []
        # Any item may carry the AUTOMATIONS index partition (a worker's run item too):
        # only the automations' own items are evaluated or listed (own_keys.py).
        with OwnItems("automation", _automation_key) as own:
            while True:
                response = self.client.query(**query)
                records += [_record(item) for item in own(response["Items"])]
                last = response.get("LastEvaluatedKey")
                if not last:
                    return records
                query["ExclusiveStartKey"] = last

    def record_outcome(self, automation_id: str, *, fired_at: datetime, error: str | None) -> None:
        values: dict[str, Any] = {"last_fired": fired_at.isoformat()}
        if error is not None:
            values |= {"last_error": error[:2000], "last_error_at": self.clock.now().isoformat()}
        sets = ", ".join(f"#{name} = :{name}" for name in values)
        try:
            self.client.update_item(
                TableName=self.table,
                Key=to_item(resources.automation_key(automation_id)),
                UpdateExpression=f"SET {sets}",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={f"#{name}": name for name in values},
                ExpressionAttributeValues={f":{n}": to_attribute(v) for n, v in values.items()},
            )
        except ClientError as exc:
            if not _conditional(exc):
                raise  # deleted meanwhile: nothing to note

    def _insert(self, record: AutomationRecord) -> None:
        index = resources.BY_TIME
        automation = record.automation
        item = {
            **resources.automation_key(record.id),
            "entity": "automation",
            "id": record.id,
            "name": record.name,
            "definition": automation.model_dump_json(),
            "enabled": automation.enabled,
            "created": record.created.isoformat(),
            "updated": record.updated.isoformat(),
            index.partition_key: resources.AUTOMATIONS_PARTITION,
            index.sort_key: record.name,
        }
        claim = {**resources.automation_name_key(record.name), "id": record.id}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item(claim),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item(item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise DuplicateAutomationName(duplicate_message(record.name)) from None
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise DuplicateAutomationName(
                    f"An automation with id {record.id} exists."
                ) from None
            raise

    def _get(self, automation_id: str) -> AutomationRecord | None:
        item = self.client.get_item(
            TableName=self.table,
            Key=to_item(resources.automation_key(automation_id)),
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else _record(item)

    def _id_by_name(self, name: str) -> str | None:
        item = self.client.get_item(
            TableName=self.table,
            Key=to_item(resources.automation_name_key(name)),
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else str(item["id"]["S"])

    def _set_enabled(self, automation_id: str, enabled: bool) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=to_item(resources.automation_key(automation_id)),
                UpdateExpression="SET enabled = :e, updated = :u",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={
                    ":e": to_attribute(enabled),
                    ":u": to_attribute(self.clock.now().isoformat()),
                },
            )
        except ClientError as exc:
            if _conditional(exc):
                raise UnknownAutomation(f"No automation with id {automation_id!r}.") from None
            raise

    def _delete(self, record: AutomationRecord) -> None:
        self.client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self.table, "Key": to_item(key)}}
                for key in (
                    resources.automation_name_key(record.name),
                    resources.automation_key(record.id),
                )
            ]
        )
        # Buckets and firings would expire anyway; remove them now.
        keys = [
            {resources.PARTITION_KEY: item["pk"], resources.SORT_KEY: item["sk"]}
            for item in self._partition(record.id, None)
        ]
        for start in range(0, len(keys), 25):
            self.client.batch_write_item(
                RequestItems={
                    self.table: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]
                }
            )
        if self.secrets is not None and self.secrets.owns(record.automation):
            self.secrets.delete(record.id)  # scheduled: see DELETION_RECOVERY_DAYS

    def _partition(self, automation_id: str, prefix: str | None) -> builtins.list[dict[str, Any]]:
        condition = "pk = :p" + (" AND begins_with(sk, :s)" if prefix else "")
        values = {":p": to_attribute(resources.automation_partition(automation_id))}
        if prefix:
            values[":s"] = to_attribute(prefix)
        items: builtins.list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        ):
            items += page["Items"]
        return items

    def read_bucket(self, automation_id: str, key: str) -> Bucket | None:
        item = self.client.get_item(
            TableName=self.table,
            Key=to_item(resources.automation_bucket_key(automation_id, key)),
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else _bucket(item)

    def list_buckets(self, automation_id: str) -> builtins.list[Bucket]:
        items = self._partition(automation_id, resources.AUTOMATION_BUCKET_PREFIX)
        return [_bucket(item) for item in items]

    def due_buckets(self, automation_id: str, now: datetime) -> builtins.list[Bucket]:
        index = resources.BY_STATE
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index.name,
            "KeyConditionExpression": "#p = :p AND #s <= :s",
            "ExpressionAttributeNames": {"#p": index.partition_key, "#s": index.sort_key},
            "ExpressionAttributeValues": to_item(
                {
                    ":p": resources.automation_due_partition(automation_id),
                    ":s": f"{sort_time(now)}$",  # "$" sorts right after "#"
                }
            ),
        }
        buckets: builtins.list[Bucket] = []

        def bucket_key(item: Mapping[str, Any]) -> Mapping[str, str]:
            state = json.loads(string_attribute(item, "state"))
            return resources.automation_bucket_key(automation_id, str(state["key"]))

        # A forged bucket (any item with this index partition) could make a genuine
        # automation fire: only the automation's own bucket items count.
        with OwnItems("automation bucket", bucket_key) as own:
            while True:
                response = self.client.query(**query)
                buckets += [_bucket(item) for item in own(response["Items"])]
                last = response.get("LastEvaluatedKey")
                if not last:
                    return buckets
                query["ExclusiveStartKey"] = last

    def write_bucket(
        self,
        automation_id: str,
        bucket: Bucket,
        *,
        seen_id: str | None,
        due: datetime | None,
        expires_at: int,
    ) -> bool:
        stored = replace(bucket, version=bucket.version + 1)
        if due is not None:
            index = resources.BY_STATE
            listed = {
                index.partition_key: resources.automation_due_partition(automation_id),
                index.sort_key: f"{sort_time(due)}#{bucket.key}",
            }
        else:
            listed = {}
        item = {
            **resources.automation_bucket_key(automation_id, bucket.key),
            "entity": "automation_bucket",
            "state": json.dumps(stored.to_dict(), separators=(",", ":")),
            "trigger": bucket.trigger,
            "count": bucket.count,
            "window_start": bucket.window_start.isoformat() if bucket.window_start else None,
            "after_seen": bucket.after_event is not None,
            "fired_window": bucket.fired.window if bucket.fired else None,
            "event_ids": list(bucket.event_ids),
            "version": stored.version,
            resources.TTL_ATTRIBUTE: expires_at,
            **listed,
        }
        if bucket.version == 0:
            condition = "attribute_not_exists(pk)"
            values: dict[str, Any] = {}
        else:
            condition = "version = :seen"
            values = {":seen": to_attribute(bucket.version)}
        if seen_id is not None:
            condition += " AND NOT contains(event_ids, :id)"
            values[":id"] = to_attribute(seen_id)
        request: dict[str, Any] = {
            "TableName": self.table,
            "Item": to_item(item),
            "ConditionExpression": condition,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self.client.put_item(**request)
        except ClientError as exc:
            if _conditional(exc):
                return False
            raise
        return True

    def claim_firing(self, automation_id: str, fire: Fire, *, expires_at: int) -> bool:
        item = {
            **resources.automation_firing_key(automation_id, fire.id),
            "entity": "automation_firing",
            "trigger": fire.trigger,
            "bucket": fire.bucket,
            "window": fire.window,
            "state": fire.state,
            "fired_at": fire.at.isoformat(),
            "event_id": (fire.event or {}).get("id"),
            "event_flow_run_id": flow_run_of_document(fire.event),
            "claimed_at": self.clock.now().isoformat(),
            resources.TTL_ATTRIBUTE: expires_at,
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _conditional(exc):
                return False
            raise
        return True

    def list_firings(self, automation_id: str, *, limit: int = 50) -> builtins.list[FiringRecord]:
        now = self.clock.now().timestamp()
        records = []
        for item in self._partition(automation_id, resources.AUTOMATION_FIRING_PREFIX):
            raw = from_item(item)
            # DynamoDB deletes expired items lazily (within days): skip them here.
            if int(raw.get(resources.TTL_ATTRIBUTE, 0)) <= now:
                continue
            record = _firing(raw)
            if record is not None:
                records.append(record)
        records.sort(key=lambda record: record.fired_at, reverse=True)
        return records[:limit]


def _firing(raw: dict[str, Any]) -> FiringRecord | None:
    """A firing item as a record; None for an item without the fields a firing has."""
    fired_at = parse_time(raw.get("fired_at"))
    if fired_at is None:
        return None
    event_id = raw.get("event_id")
    event_run = raw.get("event_flow_run_id")
    return FiringRecord(
        id=str(raw[resources.SORT_KEY]).removeprefix(resources.AUTOMATION_FIRING_PREFIX),
        trigger=str(raw.get("trigger", "")),
        bucket=str(raw.get("bucket", "")),
        window=str(raw.get("window", "")),
        state=str(raw.get("state", "")),
        fired_at=fired_at,
        event_id=str(event_id) if event_id is not None else None,
        event_flow_run_id=str(event_run) if event_run is not None else None,
    )


def _conditional(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def _automation_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    # `_record` takes the automation's id from this attribute.
    return resources.automation_key(string_attribute(item, "id"))


def _record(item: dict[str, Any]) -> AutomationRecord:
    raw = from_item(item)
    automation = Automation.model_validate_json(raw["definition"])
    automation = automation.model_copy(
        update={"id": raw["id"], "enabled": bool(raw.get("enabled", True))}
    )
    return AutomationRecord(
        automation=automation,
        created=datetime.fromisoformat(raw["created"]),
        updated=datetime.fromisoformat(raw["updated"]),
        last_fired=parse_time(raw.get("last_fired")),
        last_error=raw.get("last_error"),
        last_error_at=parse_time(raw.get("last_error_at")),
    )


def _bucket(item: dict[str, Any]) -> Bucket:
    return Bucket.from_dict(json.loads(item["state"]["S"]))
