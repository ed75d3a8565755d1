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
again is a no-op): a run's state event is `uuid5(resource id, run version of that state)`
(every transition adds one to the version and pushes the previous state on the history,
so the state `k` places from the end of history+state is at version `version - k`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from stratoflow import resources
from stratoflow.events import labels
from stratoflow.events.documents import document_of
from stratoflow.events.label_names import RESOURCE_ID, RESOURCE_NAME
from stratoflow.events.models import Event, Resource
from stratoflow.exceptions import StratoflowError
from stratoflow.states import StateType
from stratoflow.stored_history import UnreadableHistory, history_of

NAMESPACE = uuid.UUID("6f1f4a52-4c3e-5b8e-9d0a-3a7f2c1b9e01")
"""uuid5 namespace of derived event ids."""

StreamEventName = Literal["INSERT", "MODIFY", "REMOVE"]


class UnreadableRecord(StratoflowError, ValueError):
    """A stream record whose item cannot be read (a malformed state, definition or event)."""


@dataclass(frozen=True)
class StreamChange:
    """One DynamoDB stream record, its images deserialized (TypeDeserializer)."""

    event_name: StreamEventName
    new_image: Mapping[str, Any] | None = None
    old_image: Mapping[str, Any] | None = None
    sequence_number: str | None = None
    approximate_time: datetime | None = None
    """When the write happened (the record's ApproximateCreationDateTime): the time of
    pause, resume and delete events (now, without it)."""

    @property
    def image(self) -> Mapping[str, Any]:
        image = self.new_image or self.old_image
        if not image:
            raise UnreadableRecord(
                f"A {self.event_name} record without item images: the table's stream must "
                f"use the {resources.STREAM_VIEW_TYPE} view type."
            )
        return image

    @property
    def keys(self) -> tuple[str, str]:
        image = self.image
        return str(image.get(resources.PARTITION_KEY, "")), str(image.get(resources.SORT_KEY, ""))


def derive_events(change: StreamChange) -> list[Event]:
    """The events one stream record stands for (see the module docstring)."""
    pk, sk = change.keys
    if pk.startswith("FLOWRUN#") and sk == resources.META:
        return _flow_run_events(change)
    if pk.startswith("FLOWRUN#") and sk == resources.FLOW_RUN_HEARTBEAT:
        return _heartbeat_events(change, pk.removeprefix("FLOWRUN#"))
    if is_task_run_item(change):
        return _task_run_events(change)
    if pk.startswith("DEPLOYMENT#") and sk == resources.META:
        return _deployment_events(change)
    if pk.startswith("WORKPOOL#") and sk == resources.META:
        return _work_queue_events(change)
    if pk.startswith(resources.EVENT_PARTITION_PREFIX):
        return _user_events(change)
    return []


def is_task_run_item(change: StreamChange) -> bool:
    """A task run's item (in its flow run's partition, or a background task run's own)."""
    pk, sk = change.keys
    return (pk.startswith("FLOWRUN#") and sk.startswith(resources.TASK_RUN_SORT_PREFIX)) or (
        pk.startswith("TASKRUN#") and sk == resources.META
    )


def task_run_events(item: Mapping[str, Any]) -> list[Event]:
    """Every state event a task run's item stands for, as the stream derives them (same
    ids): how `strato events ls --flow-run` shows task-run events that were not stored."""
    return derive_events(StreamChange("INSERT", new_image=item))


HEARTBEAT_EVENT = "stratoflow.flow-run.heartbeat"


def is_event_item(change: StreamChange) -> bool:
    """An `EVENT#` item (already stored): what it derives is not stored again."""
    return change.keys[0].startswith(resources.EVENT_PARTITION_PREFIX)


def event_id(resource_id: str, token: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{resource_id}/{token}"))


# Runs


@dataclass(frozen=True)
class _StateAt:
    version: int
    type: StateType
    name: str
    message: str | None
    timestamp: datetime

    def summary(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "name": self.name,
            "message": self.message,
            "timestamp": self.timestamp.isoformat(),
        }


def _moment(value: Any, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise UnreadableRecord(f"{what} is not an ISO time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _number(value: Any, what: str) -> int:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return int(value)
    raise UnreadableRecord(f"{what} is not a number: {value!r}")


def _read_state(raw: Any, version: int, where: str) -> _StateAt:
    if not isinstance(raw, Mapping):
        raise UnreadableRecord(f"The state of {where} is not a map: {raw!r}"[:300])
    try:
        state_type = StateType(str(raw.get("type")))
    except ValueError:
        raise UnreadableRecord(
            f"The state of {where} has no valid type: {raw.get('type')!r}"
        ) from None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise UnreadableRecord(f"The state of {where} has no name: {name!r}")
    message = raw.get("message")
    return _StateAt(
        version=version,
        type=state_type,
        name=name,
        message=None if message is None else str(message),
        timestamp=_moment(raw.get("timestamp"), f"The state time of {where}"),
    )


def _states(image: Mapping[str, Any] | None, where: str) -> list[_StateAt]:
    """History then current state, each with the run version it was entered at."""
    if not image or image.get("state") is None:
        return []
    version = _number(image.get("version", 0), f"The version of {where}")
    try:
        history = history_of(image)
    except UnreadableHistory as exc:
        raise UnreadableRecord(f"The state history of {where}: {exc}") from None
    raw = [*history, image["state"]]
    last = len(raw) - 1
    return [_read_state(s, version - (last - i), where) for i, s in enumerate(raw)]


def _new_states(change: StreamChange, where: str) -> list[tuple[_StateAt | None, _StateAt]]:
    """(previous state, state) for every state the write entered, oldest first."""
    if change.event_name == "REMOVE":
        return []
    new = _states(change.new_image, where)
    old = _states(change.old_image, where)
    old_current = old[-1] if old else None
    if change.old_image is None:
        floor = None
    else:
        floor = _number(change.old_image.get("version", 0), f"The version of {where}")
    entered: list[tuple[_StateAt | None, _StateAt]] = []
    for index, state in enumerate(new):
        if floor is not None and state.version <= floor:
            continue
        previous = new[index - 1] if index > 0 else old_current
        entered.append((previous, state))
    return entered


def _state_labels(state: _StateAt) -> dict[str, str]:
    return {
        labels.STATE_TYPE: state.type.value,
        labels.STATE_NAME: state.name,
        labels.STATE_MESSAGE: state.message or "",
    }


def _state_payload(previous: _StateAt | None, state: _StateAt) -> dict[str, Any]:
    return {
        "intended": {"from": previous.type.value if previous else None, "to": state.type.value},
        "initial_state": previous.summary() if previous else None,
        "validated_state": state.summary(),
    }


def _strings(value: Any) -> list[str]:
    if not value:
        return []
    return [str(v) for v in value] if isinstance(value, list | set | tuple) else []


def _flow_run_related(image: Mapping[str, Any]) -> list[Resource]:
    found = [labels.flow(str(image.get("flow_name") or "unknown"))]
    if image.get("deployment_name"):
        found.append(labels.deployment(str(image["deployment_name"])))
    if image.get("work_queue_name"):
        pool = str(image.get("work_pool_name") or resources.DEFAULT_WORK_POOL)
        found += [labels.work_queue(pool, str(image["work_queue_name"])), labels.work_pool(pool)]
    found += [labels.tag(t) for t in _strings(image.get("tags"))]
    return found


def _run_events(
    change: StreamChange,
    *,
    kind: Literal["flow-run", "task-run"],
    run_id: str,
    resource_id: str,
    related: list[Resource],
) -> list[Event]:
    image = change.image
    where = f"{kind} {run_id!r}"
    name = str(image.get("name") or run_id)
    events = []
    for previous, state in _new_states(change, where):
        names = [state.name]
        if kind == "flow-run":
            names += _pause_aliases(previous, state)
        for event_name in names:
            suffix = "" if event_name == state.name else f"/{event_name}"
            events.append(
                Event(
                    id=event_id(resource_id, f"{state.version}{suffix}"),
                    occurred=state.timestamp,
                    event=f"stratoflow.{kind}.{event_name}",
                    resource=Resource(
                        labels={
                            RESOURCE_ID: resource_id,
                            RESOURCE_NAME: name,
                            **_state_labels(state),
                        }
                    ),
                    related=tuple(related),
                    payload=_state_payload(previous, state),
                    follows=event_id(resource_id, str(previous.version)) if previous else None,
                )
            )
    return events


def _pause_aliases(previous: _StateAt | None, state: _StateAt) -> list[str]:
    """`Paused` for entering any paused state (Suspended too) and `Resumed` for leaving
    one to go on (not to end): what automations about human input trigger on."""
    if state.type is StateType.PAUSED and state.name != "Paused":
        return ["Paused"]
    if (
        previous is not None
        and previous.type is StateType.PAUSED
        and state.type in (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING)
    ):
        return ["Resumed"]
    return []


def _flow_run_events(change: StreamChange) -> list[Event]:
    image = change.image
    run_id = change.keys[0].removeprefix("FLOWRUN#")  # where the item lives
    resource_id = labels.flow_run_id(run_id)
    related = _flow_run_related(image)
    events = _run_events(
        change, kind="flow-run", run_id=run_id, resource_id=resource_id, related=related
    )
    if events or change.event_name != "MODIFY":
        return events
    # Items written before heartbeats had items of their own carry them.
    return _heartbeat_events(change, run_id)


def _heartbeat_events(change: StreamChange, run_id: str) -> list[Event]:
    """`stratoflow.flow-run.heartbeat` for a beat that moved: on a `HEARTBEAT` item
    (resources.flow_run_heartbeat_key), which names the run's state and related
    resources as its item does."""
    if change.event_name == "REMOVE":  # expired
        return []
    old, new = change.old_image or {}, change.new_image or {}
    beat = new.get("heartbeat")
    if not beat or beat == old.get("heartbeat"):
        return []
    resource_id = labels.flow_run_id(run_id)
    related = _flow_run_related(new)
    where = f"flow-run {run_id!r}"
    states = _states(new, where)
    state_labels = _state_labels(states[-1]) if states else {}
    return [
        Event(
            id=event_id(resource_id, f"heartbeat/{beat}"),
            occurred=_moment(beat, f"The heartbeat of {where}"),
            event=HEARTBEAT_EVENT,
            resource=Resource(
                labels={
                    RESOURCE_ID: resource_id,
                    RESOURCE_NAME: str(new.get("name") or run_id),
                    **state_labels,
                }
            ),
            related=tuple(related),
            payload={},
        )
    ]


def _task_run_events(change: StreamChange) -> list[Event]:
    image = change.image
    run_id = str(image.get("id") or change.keys[1].removeprefix(resources.TASK_RUN_SORT_PREFIX))
    related: list[Resource] = []
    if image.get("flow_run_id"):
        related.append(labels.flow_run(str(image["flow_run_id"])))
    if image.get("task_name"):
        related.append(labels.task(str(image["task_name"])))
    related += [labels.tag(t) for t in _strings(image.get("tags"))]
    return _run_events(
        change,
        kind="task-run",
        run_id=run_id,
        resource_id=labels.task_run_id(run_id),
        related=related,
    )


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
    related += [labels.tag(t) for t in _strings(current.get("tags"))]
    token = _token(change, old, new)
    written = _written_at(change)
    # created / updated: when it was deployed; paused, resumed, deleted: when written
    deployed = written
    if new and new.get("updated"):
        deployed = _moment(new["updated"], f"The update time of {where}")
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
