"""Events derived on read: the `stratoflow.task-run.*` events of a flow run's task runs,
from their items, for installations that do not store them (the default:
STRATOFLOW_STORE_TASK_RUN_EVENTS). The same derivation (and ids) as the stream's."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, cast

from stratoflow import resources
from stratoflow.backends.aws.items import from_item, to_attribute
from stratoflow.events.derive import UnreadableRecord, task_run_events
from stratoflow.events.emit import event_store_for
from stratoflow.events.labels import flow_run_id as flow_run_resource_id
from stratoflow.events.models import Event

if TYPE_CHECKING:
    from stratoflow.backends.aws.backend import AwsBackend
    from stratoflow.context import Services


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


def flow_run_events(
    services: Services,
    flow_run_id: str,
    start: datetime,
    end: datetime | None = None,
    *,
    name: str | None = None,
    limit: int = 100,
) -> list[Event]:
    """A flow run's stored events and its task runs' (derived on read when they are not
    stored), newest first: what `strato events ls --flow-run` and the UI's run page show.
    `name` is an event name prefix."""
    stored = event_store_for(services).query(
        start, end, name=name, resource=flow_run_resource_id(flow_run_id), limit=limit
    )
    by_id = {event.id: event for event in stored}
    # Stored events exist with the AWS backend only (callers check that first).
    backend = cast("AwsBackend", services.backend)
    for event in flow_run_task_run_events(backend, flow_run_id):
        in_window = start <= event.occurred and (end is None or event.occurred <= end)
        if in_window and (name is None or event.event.startswith(name)):
            by_id.setdefault(event.id, event)
    return sorted(by_id.values(), key=lambda e: e.occurred, reverse=True)[:limit]
