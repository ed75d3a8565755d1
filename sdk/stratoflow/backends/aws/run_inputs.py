"""Flow run inputs in the state table: `FLOWRUN#<run id>` / `INPUT#<key>`.

An input is written once (a conditional put), by whoever resumes or sends input to the
run: an operator, another flow, an automation, or the run's own worker. Worker roles can
write items in their runs' partitions, so an input is untrusted JSON text to every
reader: it is parsed as JSON and validated against the run's input model
(`stratoflow.input`), never unpickled or imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.items import to_attribute, to_item
from stratoflow.backends.aws.own_keys import string_attribute
from stratoflow.exceptions import RunInputExists
from stratoflow.models import RunInputRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ENTITY = "run_input"


def _key(flow_run_id: str, key: str) -> dict[str, Any]:
    return {k: to_attribute(v) for k, v in resources.run_input_key(flow_run_id, key).items()}


def _record(flow_run_id: str, item: Mapping[str, Any]) -> RunInputRecord | None:
    sort_key = string_attribute(item, resources.SORT_KEY)
    key = sort_key.removeprefix(resources.RUN_INPUT_SORT_PREFIX)
    sender = item.get("sender", {}).get("S")
    return RunInputRecord(
        flow_run_id=flow_run_id,
        key=key,
        value=string_attribute(item, "value"),
        sender=sender if isinstance(sender, str) else None,
        created=datetime.fromisoformat(string_attribute(item, "created")),
    )


class DynamoRunInputStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def create(self, record: RunInputRecord) -> RunInputRecord:
        item = to_item(
            {
                **resources.run_input_key(record.flow_run_id, record.key),
                "entity": ENTITY,
                "value": record.value,
                "sender": record.sender,
                "created": record.created.isoformat(),
            }
        )
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": resources.PARTITION_KEY},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise RunInputExists(
                    f"Flow run {record.flow_run_id} already has an input {record.key!r}."
                ) from None
            raise
        return record

    def read(self, flow_run_id: str, key: str) -> RunInputRecord | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=_key(flow_run_id, key), ConsistentRead=True
        ).get("Item")
        return _record(flow_run_id, item) if item else None

    def list_inputs(
        self, flow_run_id: str, *, prefix: str = "", limit: int | None = None
    ) -> list[RunInputRecord]:
        found: list[RunInputRecord] = []
        paginator = self.dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": resources.PARTITION_KEY, "#sk": resources.SORT_KEY},
            ExpressionAttributeValues={
                ":pk": to_attribute(resources.flow_run_key(flow_run_id)[resources.PARTITION_KEY]),
                ":prefix": to_attribute(resources.RUN_INPUT_SORT_PREFIX + prefix),
            },
            ConsistentRead=True,
        )
        for page in pages:
            for item in page["Items"]:
                record = _record(flow_run_id, item)
                if record is not None:
                    found.append(record)
        found.sort(key=lambda r: r.created)
        return found[:limit] if limit is not None else found

    def delete(self, flow_run_id: str, key: str) -> bool:
        response = self.dynamodb.delete_item(
            TableName=self.table, Key=_key(flow_run_id, key), ReturnValues="ALL_OLD"
        )
        return bool(response.get("Attributes"))
