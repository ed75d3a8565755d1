"""What the triggering event points at: its flow run, deployment or work queue, and the
flow run as templates see it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from stratoflow.events.label_names import RESOURCE_NAME
from stratoflow.events.models import Event

if TYPE_CHECKING:
    from stratoflow.models import FlowRun

FLOW_RUN_PREFIX = "stratoflow.flow-run."
DEPLOYMENT_PREFIX = "stratoflow.deployment."
WORK_QUEUE_PREFIX = "stratoflow.work-queue."


def _suffix(resource_id: str, prefix: str) -> str | None:
    return resource_id[len(prefix) :] if resource_id.startswith(prefix) else None


def triggering_flow_run_id(event: Event | None) -> str | None:
    """The flow run the event is about, or its related flow run."""
    if event is None:
        return None
    found = _suffix(event.resource.id, FLOW_RUN_PREFIX)
    for resource in event.related_by_role("flow-run"):
        found = found or _suffix(resource.id, FLOW_RUN_PREFIX)
    return found


def triggering_deployment(event: Event | None) -> str | None:
    if event is None:
        return None
    if (name := _suffix(event.resource.id, DEPLOYMENT_PREFIX)) is not None:
        return event.resource.get(RESOURCE_NAME) or name
    for resource in event.related_by_role("deployment"):
        name = resource.get(RESOURCE_NAME) or _suffix(resource.id, DEPLOYMENT_PREFIX)
        if name:
            return name
    return None


def triggering_work_queue(event: Event | None) -> tuple[str, str] | None:
    """(pool, queue) of the event's work queue (`stratoflow.work-queue.<pool>/<queue>`)."""
    if event is None:
        return None
    for resource in (event.resource, *event.related_by_role("work-queue")):
        found = _suffix(resource.id, WORK_QUEUE_PREFIX)
        if found and "/" in found:
            pool, _, queue = found.partition("/")
            return pool, queue
    return None


def flow_run_document(run: FlowRun) -> dict[str, Any]:
    """A flow run for templates: `{{ flow_run.name }}`, `{{ flow_run.state_name }}`, ..."""

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": run.id,
        "name": run.name,
        "flow_name": run.flow_name,
        "state_type": run.state_type,
        "state_name": run.state_name,
        "state_message": run.state.message if run.state else None,
        "parameters": run.parameters,
        "tags": list(run.tags),
        "deployment_name": run.deployment_name,
        "work_pool_name": run.work_pool_name,
        "work_queue_name": run.work_queue_name,
        "run_count": run.run_count,
        "expected_start_time": when(run.expected_start_time),
        "start_time": when(run.start_time),
        "end_time": when(run.end_time),
        "created": when(run.created),
    }
