"""Variables in the state table: `VARIABLE#<name>` / `META`, listed by name.

Each variable is one item: its name, its value as compact JSON (at most 5000 characters,
as in Prefect), its tags, its creation and update times, and the `by_time` index keys
`VARIABLES` / `<name>`. Why the table and not SSM Parameter Store: see
docs/artifacts-and-variables.md ("Where variables are kept").

Worker roles may write `VARIABLE#` items (flows set variables), so every item read is
untrusted: a listing keeps only items whose own key is the one their name gives
(`own_keys.OwnItems`), and an item whose value is not JSON is skipped with a warning
instead of failing the listing. No control-plane component reads variables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.items import to_attribute, to_item
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.records import (
    InvalidVariableError,
    VariableAlreadyExists,
    VariableRecord,
    compact_json,
    sort_time,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)
ENTITY = "variable"


def _key(name: str) -> dict[str, Any]:
    return {k: to_attribute(v) for k, v in resources.variable_key(name).items()}


def _own_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    return resources.variable_key(string_attribute(item, "name"))


def variable_from_item(item: Mapping[str, Any]) -> VariableRecord:
    """Raises KeyError, ValueError (pydantic's ValidationError is one) for a bad item."""
    raw_tags = item.get("tags")
    tags = raw_tags.get("L", []) if isinstance(raw_tags, Mapping) else []
    return VariableRecord(
        name=string_attribute(item, "name"),
        value=json.loads(string_attribute(item, "value")),
        tags=[str(t["S"]) for t in tags if isinstance(t, Mapping) and isinstance(t.get("S"), str)],
        created=datetime.fromisoformat(string_attribute(item, "created")),
        updated=datetime.fromisoformat(string_attribute(item, "updated")),
    )


class DynamoVariableStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def read(self, name: str) -> VariableRecord | None:
        response = self.dynamodb.get_item(TableName=self.table, Key=_key(name), ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            return None
        try:
            return variable_from_item(item)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidVariableError(
                f"The stored variable {name!r} is not a valid variable "
                f"({type(exc).__name__}); set it "
                f"again: `strato variable set {name} VALUE --overwrite`."
            ) from None

    def write(
        self, name: str, value: Any, tags: list[str], *, now: datetime, overwrite: bool
    ) -> VariableRecord:
        index = resources.BY_TIME
        stamp = sort_time(now)
        if not overwrite:
            item = to_item(
                {
                    **resources.variable_key(name),
                    "entity": ENTITY,
                    "name": name,
                    "value": compact_json(value),
                    "tags": list(tags),
                    "created": stamp,
                    "updated": stamp,
                    index.partition_key: resources.VARIABLES_PARTITION,
                    index.sort_key: name,
                }
            )
            try:
                self.dynamodb.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    raise VariableAlreadyExists(
                        f"Variable {name!r} already exists. Use `overwrite=True` to update it."
                    ) from None
                raise
            return variable_from_item(item)
        # One UpdateItem: a concurrent set cannot interleave, and the creation time stays.
        response = self.dynamodb.update_item(
            TableName=self.table,
            Key=_key(name),
            UpdateExpression=(
                "SET #entity = :entity, #name = :name, #value = :value, #tags = :tags, "
                "#created = if_not_exists(#created, :now), #updated = :now, "
                "#ip = :ip, #is = :name"
            ),
            ExpressionAttributeNames={
                "#entity": "entity",
                "#name": "name",
                "#value": "value",
                "#tags": "tags",
                "#created": "created",
                "#updated": "updated",
                "#ip": index.partition_key,
                "#is": index.sort_key,
            },
            ExpressionAttributeValues={
                ":entity": to_attribute(ENTITY),
                ":name": to_attribute(name),
                ":value": to_attribute(compact_json(value)),
                ":tags": to_attribute(list(tags)),
                ":now": to_attribute(stamp),
                ":ip": to_attribute(resources.VARIABLES_PARTITION),
            },
            ReturnValues="ALL_NEW",
        )
        return variable_from_item(response["Attributes"])

    def delete(self, name: str) -> bool:
        response = self.dynamodb.delete_item(
            TableName=self.table, Key=_key(name), ReturnValues="ALL_OLD"
        )
        return bool(response.get("Attributes"))

    def list_variables(self, *, limit: int | None = None) -> list[VariableRecord]:
        index = resources.BY_TIME
        found: list[VariableRecord] = []
        skipped = 0
        paginator = self.dynamodb.get_paginator("query")
        with OwnItems("variable", _own_key) as own:
            pages = paginator.paginate(
                TableName=self.table,
                IndexName=index.name,
                KeyConditionExpression="#p = :p",
                ExpressionAttributeNames={"#p": index.partition_key},
                ExpressionAttributeValues={":p": to_attribute(resources.VARIABLES_PARTITION)},
            )
            for item in (item for page in pages for item in own(page["Items"])):
                if limit is not None and len(found) >= limit:
                    break
                try:
                    found.append(variable_from_item(item))
                # written by a worker role: a broken item must not hide the others
                except (KeyError, TypeError, ValueError):
                    skipped += 1
        if skipped:
            log.warning("Skipped %d variable item(s) that are not valid variables.", skipped)
        return found
