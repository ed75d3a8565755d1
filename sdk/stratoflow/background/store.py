"""Where background task runs' parameters live: `TASKRUN#<id>` / `PARAMETERS`, beside the
run's own item (which the engine rewrites whole, so they cannot live in it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from stratoflow import resources
from stratoflow.backends.aws.items import to_attribute
from stratoflow.background.parameters import StoredParameters
from stratoflow.exceptions import ObjectNotFound, ResultRefused

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class TaskRunParameters:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def write(self, task_run_id: str, stored: StoredParameters) -> None:
        key = resources.task_run_parameters_key(task_run_id)
        self.client.put_item(
            TableName=self.table,
            Item={
                **{name: to_attribute(value) for name, value in key.items()},
                "entity": to_attribute("task_run_parameters"),
                "document": to_attribute(stored.model_dump_json()),
            },
        )

    def read(self, task_run_id: str) -> StoredParameters:
        """The stored parameters; ObjectNotFound when there are none, ResultRefused when
        the item is not a parameters document."""
        key = resources.task_run_parameters_key(task_run_id)
        response = self.client.get_item(
            TableName=self.table,
            Key={name: to_attribute(value) for name, value in key.items()},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            raise ObjectNotFound(f"Task run {task_run_id} has no stored parameters")
        document = item.get("document", {}).get("S")
        if not isinstance(document, str):
            raise ResultRefused(f"Task run {task_run_id}: its parameters item has no document")
        try:
            return StoredParameters.model_validate_json(document)
        except ValidationError as exc:
            raise ResultRefused(
                f"Task run {task_run_id}: its parameters are not a parameters document "
                f"({exc.error_count()} problems)"
            ) from None
