"""Run state events, derived from flow-run and task-run items: from a stream record (what
the write entered) or from an item alone (what its state history still holds).

A run's state event is `stratoflow.<flow-run|task-run>.<StateName>`, with id
`uuid5(resource id, run version of that state)`: every transition adds one to the
version and pushes the previous state on the history, so the state `k` places from the
end of history+state is at version `version - k`, whichever record or item it is read
from. A run's first state is at version 1 (created with a state, or moved from none).

Derived from an item alone (`flow_run_state_events`, `task_run_events`: the events a
reader shows when they were not stored), each event is the one the stream derived when
the run entered that state (same id, occurred, resource, related, payload, follows),
except where the item no longer holds what the stream read:

- the history keeps a run's last STATE_HISTORY_LIMIT states before the current one: the
  states before are gone, and so is the oldest kept one's event (its previous state,
  which the event names, is gone too);
- a state's message is kept whole (up to 2,000 characters) while it is the current state
  and cut to its first 200 in the history: the `stratoflow.state-message` label and
  `validated_state.message` of an earlier state are the cut ones;
- the resource's name and the related resources are the item's now (a run's name, flow,
  deployment, queue and tags do not change once it exists).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from stratoflow import resources
from stratoflow.events import labels
from stratoflow.events.label_names import RESOURCE_ID, RESOURCE_NAME
from stratoflow.events.models import Event, Resource
from stratoflow.events.records import (
    StreamChange,
    UnreadableRecord,
    event_id,
    moment_of,
    number_of,
    strings_of,
)
from stratoflow.states import StateType
from stratoflow.stored_history import UnreadableHistory, history_of

HEARTBEAT_EVENT = "stratoflow.flow-run.heartbeat"
FIRST_VERSION = 1
"""The version of a run's first state."""

RunKind = Literal["flow-run", "task-run"]


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


Entered = tuple[_StateAt | None, _StateAt]
"""(previous state, state): a state the run entered, and the one it left for it."""


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
    # No message and an empty one are one: the history leaves an empty message out.
    message = raw.get("message") or None
    return _StateAt(
        version=version,
        type=state_type,
        name=name,
        message=None if message is None else str(message),
        timestamp=moment_of(raw.get("timestamp"), f"The state time of {where}"),
    )


def _states(image: Mapping[str, Any] | None, where: str) -> list[_StateAt]:
    """History then current state, each with the run version it was entered at."""
    if not image or image.get("state") is None:
        return []
    version = number_of(image.get("version", 0), f"The version of {where}")
    try:
        history = history_of(image)
    except UnreadableHistory as exc:
        raise UnreadableRecord(f"The state history of {where}: {exc}") from None
    raw = [*history, image["state"]]
    last = len(raw) - 1
    return [_read_state(s, version - (last - i), where) for i, s in enumerate(raw)]


def _new_states(change: StreamChange, where: str) -> list[Entered]:
    """Every state the write entered, oldest first."""
    if change.event_name == "REMOVE":
        return []
    new = _states(change.new_image, where)
    old = _states(change.old_image, where)
    old_current = old[-1] if old else None
    if change.old_image is None:
        floor = None
    else:
        floor = number_of(change.old_image.get("version", 0), f"The version of {where}")
    entered: list[Entered] = []
    for index, state in enumerate(new):
        if floor is not None and state.version <= floor:
            continue
        previous = new[index - 1] if index > 0 else old_current
        entered.append((previous, state))
    return entered


def _recorded_states(item: Mapping[str, Any], where: str) -> list[Entered]:
    """Every state the item's history still holds with the state before it, oldest first
    (the oldest kept state of a history cut at its bound has lost its previous one)."""
    states = _states(item, where)
    entered: list[Entered] = [
        (states[index - 1] if index > 0 else None, state) for index, state in enumerate(states)
    ]
    if states and states[0].version > FIRST_VERSION:
        return entered[1:]
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


def _flow_run_related(image: Mapping[str, Any]) -> list[Resource]:
    found = [labels.flow(str(image.get("flow_name") or "unknown"))]
    if image.get("deployment_name"):
        found.append(labels.deployment(str(image["deployment_name"])))
    if image.get("work_queue_name"):
        pool = str(image.get("work_pool_name") or resources.DEFAULT_WORK_POOL)
        found += [labels.work_queue(pool, str(image["work_queue_name"])), labels.work_pool(pool)]
    found += [labels.tag(t) for t in strings_of(image.get("tags"))]
    return found


def _task_run_related(image: Mapping[str, Any]) -> list[Resource]:
    related: list[Resource] = []
    if image.get("flow_run_id"):
        related.append(labels.flow_run(str(image["flow_run_id"])))
    if image.get("task_name"):
        related.append(labels.task(str(image["task_name"])))
    related += [labels.tag(t) for t in strings_of(image.get("tags"))]
    return related


def _run_events(
    entered: list[Entered],
    image: Mapping[str, Any],
    *,
    kind: RunKind,
    run_id: str,
    resource_id: str,
    related: list[Resource],
) -> list[Event]:
    name = str(image.get("name") or run_id)
    events = []
    for previous, state in entered:
        names = [state.name]
        if kind == "flow-run":
            names += _pause_aliases(previous, state)
        for event_name in names:
            suffix = "" if event_name == state.name else f"/{event_name}"
            try:
                event = Event(
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
            except ValidationError as exc:  # a state name too long for an event name, ...
                raise UnreadableRecord(
                    f"The state of {kind} {run_id!r} makes no valid event: {exc}"[:300]
                ) from None
            events.append(event)
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


# Flow runs


def flow_run_change_events(change: StreamChange) -> list[Event]:
    """A flow run item's record: an event per state the write entered."""
    image = change.image
    run_id = change.keys[0].removeprefix("FLOWRUN#")  # where the item lives
    events = _run_events(
        _new_states(change, f"flow-run {run_id!r}"),
        image,
        kind="flow-run",
        run_id=run_id,
        resource_id=labels.flow_run_id(run_id),
        related=_flow_run_related(image),
    )
    if events or change.event_name != "MODIFY":
        return events
    # Items written before heartbeats had items of their own carry them.
    return heartbeat_events(change, run_id)


def flow_run_state_events(item: Mapping[str, Any]) -> list[Event]:
    """The state events of a flow run's item (deserialized, as `from_item` gives it), as
    the stream derived them when the run entered each state its history still holds
    (same ids; see the module docstring for what an item no longer holds): what readers
    show when flow-run events are not stored (STRATOFLOW_STORE_FLOW_RUN_EVENTS).
    UnreadableRecord: not a flow run's item, or one that cannot be read."""
    pk = str(item.get(resources.PARTITION_KEY, ""))
    if not pk.startswith("FLOWRUN#") or item.get(resources.SORT_KEY) != resources.META:
        raise UnreadableRecord(f"Not a flow run's item: {pk[:120]!r}")
    run_id = pk.removeprefix("FLOWRUN#")
    return _run_events(
        _recorded_states(item, f"flow-run {run_id!r}"),
        item,
        kind="flow-run",
        run_id=run_id,
        resource_id=labels.flow_run_id(run_id),
        related=_flow_run_related(item),
    )


def heartbeat_events(change: StreamChange, run_id: str) -> list[Event]:
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
    where = f"flow-run {run_id!r}"
    states = _states(new, where)
    state_labels = _state_labels(states[-1]) if states else {}
    return [
        Event(
            id=event_id(resource_id, f"heartbeat/{beat}"),
            occurred=moment_of(beat, f"The heartbeat of {where}"),
            event=HEARTBEAT_EVENT,
            resource=Resource(
                labels={
                    RESOURCE_ID: resource_id,
                    RESOURCE_NAME: str(new.get("name") or run_id),
                    **state_labels,
                }
            ),
            related=tuple(_flow_run_related(new)),
            payload={},
        )
    ]


# Task runs


def _task_run_id(image: Mapping[str, Any], sort_key: str) -> str:
    return str(image.get("id") or sort_key.removeprefix(resources.TASK_RUN_SORT_PREFIX))


def task_run_change_events(change: StreamChange) -> list[Event]:
    """A task run item's record: an event per state the write entered (a write behind
    may carry several)."""
    image = change.image
    run_id = _task_run_id(image, change.keys[1])
    return _run_events(
        _new_states(change, f"task-run {run_id!r}"),
        image,
        kind="task-run",
        run_id=run_id,
        resource_id=labels.task_run_id(run_id),
        related=_task_run_related(image),
    )


def task_run_events(item: Mapping[str, Any]) -> list[Event]:
    """Every state event a task run's item stands for, as the stream derives them (same
    ids): how `strato events ls --flow-run` shows task-run events that were not stored."""
    run_id = _task_run_id(item, str(item.get(resources.SORT_KEY, "")))
    return _run_events(
        _recorded_states(item, f"task-run {run_id!r}"),
        item,
        kind="task-run",
        run_id=run_id,
        resource_id=labels.task_run_id(run_id),
        related=_task_run_related(item),
    )
