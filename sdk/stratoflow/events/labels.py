"""Resource ids and labels of stratoflow's own objects, spelled once.

Used by the stream derivation (`derive.py`) and by `emit_event` (which relates a user's
event to the flow run or task run it is emitted from).
"""

from __future__ import annotations

from stratoflow.events.label_names import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from stratoflow.events.models import Event, Resource

PREFIX = "stratoflow"
STATE_TYPE = "stratoflow.state-type"
STATE_NAME = "stratoflow.state-name"
STATE_MESSAGE = "stratoflow.state-message"


def flow_run_id(run_id: str) -> str:
    return f"{PREFIX}.flow-run.{run_id}"


def flow_run_of(event: Event) -> str | None:
    """The id of the flow run `event` is about: its resource's (a flow run's state events)
    or its related flow run's (a task run's state events, an event emitted in a run)."""
    prefix = flow_run_id("")
    for resource in (event.resource, *event.related):
        if resource is event.resource or resource.role == "flow-run":
            run_id = resource.id.removeprefix(prefix)
            if run_id != resource.id and run_id:
                return run_id
    return None


def task_run_id(run_id: str) -> str:
    return f"{PREFIX}.task-run.{run_id}"


def deployment_id(name: str) -> str:
    return f"{PREFIX}.deployment.{name}"


def work_queue_id(pool: str, queue: str) -> str:
    return f"{PREFIX}.work-queue.{pool}/{queue}"


def work_pool_id(pool: str) -> str:
    return f"{PREFIX}.work-pool.{pool}"


def related(resource_id: str, role: str, name: str | None = None) -> Resource:
    labels = {RESOURCE_ID: resource_id, RESOURCE_ROLE: role}
    if name is not None:
        labels[RESOURCE_NAME] = name
    return Resource(labels=labels)


def flow(name: str) -> Resource:
    return related(f"{PREFIX}.flow.{name}", "flow", name)


def flow_run(run_id: str, name: str | None = None) -> Resource:
    return related(flow_run_id(run_id), "flow-run", name)


def task_run(run_id: str, name: str | None = None) -> Resource:
    return related(task_run_id(run_id), "task-run", name)


def task(name: str) -> Resource:
    return related(f"{PREFIX}.task.{name}", "task", name)


def deployment(name: str) -> Resource:
    return related(deployment_id(name), "deployment", name)


def work_queue(pool: str, queue: str) -> Resource:
    return related(work_queue_id(pool, queue), "work-queue", queue)


def work_pool(pool: str) -> Resource:
    return related(work_pool_id(pool), "work-pool", pool)


def tag(name: str) -> Resource:
    return related(f"{PREFIX}.tag.{name}", "tag", name)
