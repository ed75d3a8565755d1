"""Events derived from the state table's stream: pure functions of one stream record.

A record (`StreamChange`) carries the item before and after a write, deserialized to
plain Python values. From it:

- a flow run item: `stratoflow.flow-run.<StateName>` for every state it entered;
- a flow run's heartbeat item: `stratoflow.flow-run.heartbeat` when its beat moved;
- a task run item: `stratoflow.task-run.<StateName>` for every state it entered. Task
  runs are written behind in batches, so one write may carry several new states: they
  are read from the item's state history (every state newer than the old image's);
- a deployment: `stratoflow.deployment.created|updated|deleted|paused|resumed`;
- a work pool: `stratoflow.work-queue.paused|resumed` for each queue that changed;
- an `EVENT#` item written by `emit_event` (not derived): that event itself;
- anything else (cache entries, concurrency limits, workers, derived events): nothing.

Ids are deterministic, so a redelivered record derives the same events (and storing them
again is a no-op). Run state events are derived in run_events.py, which also derives them
from an item alone (for readers, when they were not stored).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from stratoflow import resources
from stratoflow.events import labels
from stratoflow.events.documents import document_of
from stratoflow.events.label_names import RESOURCE_ID, RESOURCE_NAME
from stratoflow.events.models import Event, Resource
from stratoflow.events.records import (
    NAMESPACE,
    StreamChange,
    StreamEventName,
    UnreadableRecord,
    event_id,
    moment_of,
    strings_of,
)
from stratoflow.events.run_events import (
    HEARTBEAT_EVENT,
    flow_run_change_events,
    flow_run_state_events,
    heartbeat_events,
    task_run_change_events,
    task_run_events,
)

__all__ = [  # and, from records.py and run_events.py, what their users import from here
    "HEARTBEAT_EVENT",
    "NAMESPACE",
    "StreamChange",
    "StreamEventName",
    "UnreadableRecord",
    "derive_events",
    "event_id",
    "flow_run_state_events",
    "is_event_item",
    "is_flow_run_item",
    "is_task_run_item",
    "task_run_events",
]


def derive_events(change: StreamChange) -> list[Event]:
    """The events one stream record stands for (see the module docstring)."""
    pk, sk = change.keys
    if is_flow_run_item(change):
        return flow_run_change_events(change)
    if pk.startswith("FLOWRUN#") and sk == resources.FLOW_RUN_HEARTBEAT:
        return heartbeat_events(change, pk.removeprefix("FLOWRUN#"))
    if is_task_run_item(change):
        return task_run_change_events(change)
    if pk.startswith("DEPLOYMENT#") and sk == resources.META:
        return _deployment_events(change)
    if pk.startswith("WORKPOOL#") and sk == resources.META:
        return _work_queue_events(change)
    if pk.startswith(resources.EVENT_PARTITION_PREFIX):
        return _user_events(change)
    return []


def is_flow_run_item(change: StreamChange) -> bool:
    """A flow run's own item (not its heartbeat's, nor its task runs')."""
    pk, sk = change.keys
    return pk.startswith("FLOWRUN#") and sk == resources.META


def is_task_run_item(change: StreamChange) -> bool:
    """A task run's item (in its flow run's partition, or a background task run's own)."""
    pk, sk = change.keys
    return (pk.startswith("FLOWRUN#") and sk.startswith(resources.TASK_RUN_SORT_PREFIX)) or (
        pk.startswith("TASKRUN#") and sk == resources.META
    )


def is_event_item(change: StreamChange) -> bool:
    """An `EVENT#` item (already stored): what it derives is not stored again."""
    return change.keys[0].startswith(resources.EVENT_PARTITION_PREFIX)


# Definitions (deployments, work pools)


def _definition(image: Mapping[str, Any] | None, where: str) -> dict[str, Any] | None:
    if not image:
        return None
    raw = image.get("definition")
    try:
        loaded = json.loads(str(raw))
    except ValueError:
        raise UnreadableRecord(f"The definition of {where} is not JSON: {raw!r}"[:300]) from None
    if not isinstance(loaded, dict):
        raise UnreadableRecord(f"The definition of {where} is not a JSON object")
    return loaded


def _token(change: StreamChange, *parts: Any) -> str:
    """What makes a definition event's id unique: the stream record's sequence number, or
    (without one, in tests) a digest of what changed."""
    if change.sequence_number:
        return change.sequence_number
    digest = hashlib.sha256(
        json.dumps([change.event_name, *parts], sort_keys=True, default=str).encode()
    ).hexdigest()
    return digest[:32]


def _written_at(change: StreamChange) -> datetime:
    return change.approximate_time or datetime.now(UTC)


def _deployment_events(change: StreamChange) -> list[Event]:
    name = change.keys[0].removeprefix("DEPLOYMENT#")
    where = f"deployment {name!r}"
    old = _definition(change.old_image, where)
    new = _definition(change.new_image, where)
    current = new or old or {}
    kinds: list[tuple[str, dict[str, Any]]] = []
    if change.event_name == "INSERT":
        kinds.append(("created", {}))
    elif change.event_name == "REMOVE":
        kinds.append(("deleted", {}))
    elif old is not None and new is not None:
        changed = sorted(
            k for k in old.keys() | new.keys() if k != "paused" and old.get(k) != new.get(k)
        )
        if changed:
            kinds.append(("updated", {"changed": changed}))
        if bool(old.get("paused")) != bool(new.get("paused")):
            kinds.append(("paused" if new.get("paused") else "resumed", {}))
    resource_id = labels.deployment_id(name)
    related = [labels.flow(str(current.get("flow_name") or "unknown"))]
    pool = str(current.get("work_pool") or resources.DEFAULT_WORK_POOL)
    queue = str(current.get("work_queue") or resources.DEFAULT_WORK_QUEUE)
    related += [labels.work_queue(pool, queue), labels.work_pool(pool)]
    related += [labels.tag(t) for t in strings_of(current.get("tags"))]
    token = _token(change, old, new)
    written = _written_at(change)
    # created / updated: when it was deployed; paused, resumed, deleted: when written
    deployed = written
    if new and new.get("updated"):
        deployed = moment_of(new["updated"], f"The update time of {where}")
    return [
        Event(
            id=event_id(resource_id, f"{kind}/{token}"),
            occurred=deployed if kind in ("created", "updated") else written,
            event=f"stratoflow.deployment.{kind}",
            resource=Resource(labels={RESOURCE_ID: resource_id, RESOURCE_NAME: name}),
            related=tuple(related),
            payload=payload,
        )
        for kind, payload in kinds
    ]


def _paused_queues(definition: Mapping[str, Any] | None) -> dict[str, bool]:
    if not definition:
        return {}
    queues = definition.get("queues")
    if not isinstance(queues, Sequence):
        return {}
    return {
        str(q.get("name")): bool(q.get("paused"))
        for q in queues
        if isinstance(q, Mapping) and q.get("name")
    }


def _work_queue_events(change: StreamChange) -> list[Event]:
    if change.event_name == "REMOVE":
        return []
    pool = change.keys[0].removeprefix("WORKPOOL#")
    where = f"work pool {pool!r}"
    old = _paused_queues(_definition(change.old_image, where))
    new = _paused_queues(_definition(change.new_image, where))
    token = _token(change, old, new)
    occurred = _written_at(change)
    events = []
    for queue, paused in new.items():
        if paused == old.get(queue, False):
            continue
        kind = "paused" if paused else "resumed"
        resource_id = labels.work_queue_id(pool, queue)
        events.append(
            Event(
                id=event_id(resource_id, f"{kind}/{token}"),
                occurred=occurred,
                event=f"stratoflow.work-queue.{kind}",
                resource=Resource(labels={RESOURCE_ID: resource_id, RESOURCE_NAME: queue}),
                related=(labels.work_pool(pool),),
                payload={},
            )
        )
    return events


# Events written by emit_event


def _user_events(change: StreamChange) -> list[Event]:
    new = change.new_image
    if change.event_name != "INSERT" or not new or new.get("derived", False):
        return []
    try:
        return [Event.model_validate_json(document_of(new))]
    except ValueError as exc:  # pydantic's ValidationError and BadDocument are ValueErrors
        raise UnreadableRecord(
            f"Event item {change.keys[0]!r} holds no valid event: {exc}"[:500]
        ) from None
