"""Events derived on read: the `stratoflow.task-run.*` events of a flow run's task runs,
from their items, for installations that do not store them (the default:
STRATOFLOW_STORE_TASK_RUN_EVENTS). The same derivation (and ids) as the stream's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stratoflow import resources
from stratoflow.backends.aws.items import from_item, to_attribute
from stratoflow.events.derive import UnreadableRecord, task_run_events
from stratoflow.events.models import Event

if TYPE_CHECKING:
    from stratoflow.backends.aws.backend import AwsBackend


def flow_run_task_run_events(backend: AwsBackend, flow_run_id: str) -> list[Event]:
    """Every state event of the flow run's task runs (one Query of its partition)."""
    partition = resources.flow_run_key(flow_run_id)[resources.PARTITION_KEY]
    found: list[Event] = []
    paginator = backend.dynamodb.get_paginator("query")
    for page in paginator.paginate(
        TableName=backend.table,
        KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
        ExpressionAttributeNames={"#pk": resources.PARTITION_KEY, "#sk": resources.SORT_KEY},
        ExpressionAttributeValues={
            ":pk": to_attribute(partition),
            ":prefix": to_attribute(resources.TASK_RUN_SORT_PREFIX),
        },
    ):
        for item in page["Items"]:
            try:
                found.extend(task_run_events(from_item(item)))
            except UnreadableRecord:
                continue  # a malformed item (a worker's write) shows no events
    return found
