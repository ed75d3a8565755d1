"""Translating flow runs, task runs and states to DynamoDB items and back.

Timestamps are ISO 8601 strings (they sort), counters are numbers, free-form values
(parameters, task inputs, state details) are JSON strings, inline results are binary.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic_core import to_jsonable_python

from stratoflow import resources
from stratoflow.backends.aws.result_refs import ResultRefs, flow_run_owner, task_run_owner
from stratoflow.models import FlowRun, TaskRun
from stratoflow.orchestration.ordering import state_sort_moment
from stratoflow.results import ResultRecord
from stratoflow.states import State, StateType
from stratoflow.stored_history import history_attributes, history_of

MESSAGE_LIMIT = 2000
"""Characters of a state message kept in DynamoDB (the full text is in the run's logs)."""
HISTORY_MESSAGE_LIMIT = 200

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attribute(value: Any) -> Any:
    return _serializer.serialize(value)


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A low-level DynamoDB item; None values are left out."""
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def to_json(value: Any) -> str:
    return json.dumps(to_jsonable_python(value, fallback=repr), separators=(",", ":"))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _moment(text: Any) -> datetime | None:
    return datetime.fromisoformat(str(text)) if text else None


def _truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


OWN_IDS = ("task_run_id", "flow_run_id")
"""The run ids a stored state may leave out of its details: bit i of its `own` stands for
OWN_IDS[i]."""


def state_to_map(
    state: State, *, message_limit: int = MESSAGE_LIMIT, own: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The stored form of a state. `own`: the details the run's item already holds (its
    own ids, which the engine puts in every state's details), left out (their names
    a bit each in `own`) and put back by `state_from_map`: without them a task run's item
    fits in one write unit."""
    details = state.details
    elided = None
    if own and details:
        kept = {k: v for k, v in details.items() if own.get(k) != v}
        if len(kept) < len(details):
            details = kept
            elided = sum(
                1 << i for i, k in enumerate(OWN_IDS) if own.get(k) == state.details.get(k)
            )
    return {
        "type": state.type.value,
        "name": state.name,
        "message": _truncate(state.message, message_limit),
        "timestamp": state.timestamp.isoformat(),
        "details": to_json(details) if details else None,
        "own": elided,
    }


def state_from_map(raw: Mapping[str, Any], *, own: Mapping[str, str] | None = None) -> State:
    raw_details = raw.get("details")
    details = json.loads(raw_details) if raw_details else {}
    elided = int(raw.get("own") or 0)
    if own and elided:  # the run's own ids, left out when written
        put_back = {k: own[k] for i, k in enumerate(OWN_IDS) if elided >> i & 1 and k in own}
        details = {**put_back, **details}
    return State(
        type=StateType(raw["type"]),
        name=str(raw["name"]),
        message=raw.get("message"),
        timestamp=datetime.fromisoformat(str(raw["timestamp"])),
        details=details,
    )


def _own_ids(flow_run_id: str | None, task_run_id: str | None = None) -> dict[str, str]:
    own = {"task_run_id": task_run_id} if task_run_id is not None else {}
    if flow_run_id is not None:
        own["flow_run_id"] = flow_run_id
    return own


def _with_result(state: State | None, record: ResultRecord | None) -> State | None:
    """A Completed state read back loads its value through the run's result record."""
    if state is not None and record is not None and state.type is StateType.COMPLETED:
        state.result_record = record
    return state


def result_to_map(record: ResultRecord | None) -> dict[str, Any] | None:
    """The stored form of a result record. `store` is written for readers of the previous
    version; readers compare it with the configured store and never follow it."""
    if record is None or record.refused is not None:
        return None  # a refused record is not written back as if it had been accepted
    stored = {
        "serializer": record.serializer,
        "key": record.key,
        "inline": record.inline,
        "store": None if record.store is None else record.store.uri(""),
        "signature": record.signature,
    }
    return {k: v for k, v in stored.items() if v is not None}


def _key_part(raw: Mapping[str, Any], attribute: str, prefix: str) -> str | None:
    value = raw.get(attribute)
    if isinstance(value, str) and value.startswith(prefix):
        return value.removeprefix(prefix)
    return None


def _task_run_ids(raw: Mapping[str, Any]) -> tuple[str | None, str]:
    """(flow run id, task run id) of a task run item, from its key when it has one: the
    key is where the item lives, while its attributes are whatever its writer put."""
    in_flow = _key_part(raw, resources.SORT_KEY, resources.TASK_RUN_SORT_PREFIX)
    if in_flow is not None:
        return _key_part(raw, resources.PARTITION_KEY, "FLOWRUN#"), in_flow
    alone = _key_part(raw, resources.PARTITION_KEY, "TASKRUN#")
    if alone is not None:
        return None, alone
    return raw.get("flow_run_id"), str(raw["id"])


def _history(states: list[State], own: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    return [
        {
            k: v
            for k, v in state_to_map(s, message_limit=HISTORY_MESSAGE_LIMIT, own=own).items()
            if v
        }
        for s in states
    ]


def state_sort_time(run: FlowRun, state: State) -> str:
    """A final run's `by_state` sort key (orchestration.ordering.state_sort_moment)."""
    return state_sort_moment(run, state).isoformat()


def state_index_keys(run: FlowRun, state: State) -> dict[str, str]:
    """Where a run is on `by_state` (and, once final, on `by_time` and `by_deployment`).

    A run that is not final is in one partition, `STATE#ACTIVE`, sorted by its creation:
    keys no transition between Scheduled, Pending, Running, Paused and Cancelling
    changes, so such a transition rewrites its entry in place (one write unit) instead
    of deleting it from one partition and putting it in another (two). Its readers
    (flow_run_lists.py) order and filter the active runs by state in memory. A final run
    is in `STATE#<type>`, sorted by `state_sort_time`, and listed by time and deployment
    from then on (not removed when a run leaves a final state: a retry keeps them)."""
    if not state.is_final():
        return {
            resources.BY_STATE.partition_key: resources.ACTIVE_RUNS_PARTITION,
            resources.BY_STATE.sort_key: _utc(run.created).isoformat(),
        }
    return {
        resources.BY_STATE.partition_key: resources.state_partition(state.type.value),
        # Index sort keys need not be unique: no `#<id>` tie-breaker (37 bytes a key,
        # three keys: it kept the item over the 1 KB of one write unit). Items written
        # before carry one; both sort by time.
        resources.BY_STATE.sort_key: state_sort_time(run, state),
        **listing_keys(run),
    }


def _utc(moment: datetime | None) -> datetime:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment


def flow_run_state_attributes(run: FlowRun) -> dict[str, Any]:
    """The attributes a state transition rewrites (the rest of the item is left alone)."""
    state = run.state
    assert state is not None
    own = _own_ids(run.id)
    return {
        "state": {k: v for k, v in state_to_map(state, own=own).items() if v is not None},
        "state_type": state.type.value,
        **history_attributes(_history(run.state_history, own)),
        "recent_transition_ids": list(run.recent_transition_ids),
        "run_count": run.run_count,
        "retries": run.retries or None,
        "waits": to_json(run.waits) if run.waits else None,
        "continuations": run.continuations or None,
        "replay_since": run.replay_since if run.replay_since > 1 else None,
        "start_time": _iso(run.start_time),
        "end_time": _iso(run.end_time),
        "result": result_to_map(run.result_record),
        **state_index_keys(run, state),
    }


def listing_keys(run: FlowRun) -> dict[str, str]:
    """The `by_time` and `by_deployment` keys of a run: both by creation time."""
    # Index keys in UTC: ISO strings with different offsets do not sort by instant, and
    # the day partitions are the UTC days list_flow_runs reads.
    indexed = _utc(run.created)
    keys = {
        resources.BY_TIME.partition_key: resources.flow_runs_day_partition(
            indexed.date().isoformat()
        ),
        resources.BY_TIME.sort_key: indexed.isoformat(),
    }
    if run.deployment_name:
        keys[resources.BY_DEPLOYMENT.partition_key] = resources.deployment_partition(
            run.deployment_name
        )
        keys[resources.BY_DEPLOYMENT.sort_key] = indexed.isoformat()
    return keys


def flow_run_to_item(run: FlowRun) -> dict[str, Any]:
    if run.created is None:  # one instant for the attribute and the index keys
        run = dataclasses.replace(run, created=datetime.now(UTC))
    created = run.created
    assert created is not None
    values: dict[str, Any] = {
        **resources.flow_run_key(run.id),
        # No `id` nor `entity`: the key says both (every byte counts: a run's item stays
        # under the 1 KB of one write unit on the table and on each of its indexes).
        "name": run.name,
        "flow_name": run.flow_name,
        "flow_version": run.flow_version,
        "parameters": to_json(run.parameters),
        "tags": list(run.tags) or None,
        "parent_flow_run_id": run.parent_flow_run_id,
        "parent_task_run_id": run.parent_task_run_id,
        "deployment_name": run.deployment_name,
        "work_pool_name": run.work_pool_name,
        "work_queue_name": run.work_queue_name,
        "idempotency_key": run.idempotency_key,
        "expected_start_time": _iso(run.expected_start_time),
        "auto_scheduled": run.auto_scheduled or None,
        "enqueued_at": _iso(run.enqueued_at),
        "retries": run.retries or None,
        "infrastructure_id": run.infrastructure_id,
        "created": created.isoformat(),
        "version": run.version,
    }
    if run.state is None:
        # No state, so on no `by_state` partition: listed by time from the start.
        values.update(listing_keys(run))
    else:
        values.update(flow_run_state_attributes(run))
    return to_item(values)


def flow_run_id_of(raw: Mapping[str, Any]) -> str:
    """A deserialized flow-run item's run id: its key's (items written before also hold
    it as `id`)."""
    run_id = _key_part(raw, resources.PARTITION_KEY, "FLOWRUN#") or raw.get("id")
    if not isinstance(run_id, str) or not run_id:
        raise KeyError("id")
    return run_id


def flow_run_from_item(item: Mapping[str, Any], refs: ResultRefs) -> FlowRun:
    raw = from_item(item)
    run_id = flow_run_id_of(raw)
    result = refs.from_map(raw.get("result"), flow_run_owner(run_id))
    own = _own_ids(run_id)
    return FlowRun(
        id=run_id,
        name=raw["name"],
        flow_name=raw["flow_name"],
        flow_version=raw.get("flow_version"),
        parameters=json.loads(raw.get("parameters") or "{}"),
        tags=tuple(raw.get("tags") or ()),
        parent_flow_run_id=raw.get("parent_flow_run_id"),
        parent_task_run_id=raw.get("parent_task_run_id"),
        deployment_name=raw.get("deployment_name"),
        work_pool_name=raw.get("work_pool_name"),
        work_queue_name=raw.get("work_queue_name"),
        idempotency_key=raw.get("idempotency_key"),
        expected_start_time=_moment(raw.get("expected_start_time")),
        auto_scheduled=bool(raw.get("auto_scheduled", False)),
        enqueued_at=_moment(raw.get("enqueued_at")),
        retries=int(raw.get("retries", 0)),
        infrastructure_id=raw.get("infrastructure_id"),
        state=_with_result(
            state_from_map(raw["state"], own=own) if raw.get("state") else None, result
        ),
        state_history=[state_from_map(s, own=own) for s in history_of(raw)],
        run_count=int(raw.get("run_count", 0)),
        created=_moment(raw.get("created")),
        start_time=_moment(raw.get("start_time")),
        end_time=_moment(raw.get("end_time")),
        heartbeat=_moment(raw.get("heartbeat")),
        result_record=result,
        version=int(raw.get("version", 0)),
        recent_transition_ids=list(raw.get("recent_transition_ids") or ()),
        waits=_waits(raw.get("waits")),
        continuations=int(raw.get("continuations", 0)),
        replay_since=int(raw.get("replay_since", 1)),
    )


def _waits(raw: Any) -> dict[str, dict[str, Any]]:
    """A run's durable waits (JSON written by its worker: only plain values are kept)."""
    if not raw:
        return {}
    loaded = json.loads(raw)
    if not isinstance(loaded, dict):
        return {}
    return {str(k): v for k, v in loaded.items() if isinstance(v, dict)}


CREATION_SEQ = "creation_seq"
"""Order of creation among the task runs one process created: breaks ties of `created`
(equal under a FakeClock or a coarse clock) so that a flow run's task runs list in
creation order."""


def creation_seq(item: Mapping[str, Any]) -> int | None:
    """The creation sequence number of a task run item, if it has one."""
    value = item.get(CREATION_SEQ)
    return int(value["N"]) if value is not None else None


def task_run_due_attributes(run: TaskRun) -> dict[str, str]:
    """The `by_state` attributes of a background task run the crash sweep must look at
    (`resources.TASK_RUNS_DUE_PARTITION`); none for a final run, a run of a flow, or a
    run not due anywhere (waiting for its first worker)."""
    state = run.state
    if run.flow_run_id is not None or run.sweep_due is None or state is None:
        return {}
    if state.is_final():
        return {}
    due = run.sweep_due.astimezone(UTC).isoformat()
    return {
        resources.BY_STATE.partition_key: resources.TASK_RUNS_DUE_PARTITION,
        resources.BY_STATE.sort_key: f"{due}#{run.id}",
    }


def task_run_to_item(run: TaskRun, *, seq: int | None = None) -> dict[str, Any]:
    state = run.state
    own = _own_ids(run.flow_run_id, run.id)
    return to_item(
        {
            **resources.task_run_key(run.flow_run_id, run.id),
            "entity": "task_run",
            "id": run.id,
            "name": run.name,
            "task_key": run.task_key,
            "dynamic_key": run.dynamic_key,
            "task_name": run.task_name,
            "flow_run_id": run.flow_run_id,
            "task_version": run.task_version,
            "tags": list(run.tags) or None,
            "task_inputs": to_json(run.task_inputs) if run.task_inputs else None,
            "cache_key": run.cache_key,
            "cache_expiration": _iso(run.cache_expiration),
            "state": {k: v for k, v in state_to_map(state, own=own).items() if v is not None}
            if state
            else None,
            "state_type": state.type.value if state else None,
            "state_history": _history(run.state_history, own) or None,
            "run_count": run.run_count,
            "created": _iso(run.created),
            "start_time": _iso(run.start_time),
            "end_time": _iso(run.end_time),
            "result": result_to_map(run.result_record),
            "version": run.version,
            "replay_key": run.replay_key,
            "call_index": run.call_index,
            "attempt": run.flow_run_attempt,
            "recent_transition_ids": list(run.recent_transition_ids) or None,
            "retries": run.retries or None,
            "heartbeat": _iso(run.heartbeat),
            "sweep_due": _iso(run.sweep_due),
            CREATION_SEQ: seq,
            **task_run_due_attributes(run),
        }
    )


def task_run_from_item(item: Mapping[str, Any], refs: ResultRefs) -> TaskRun:
    raw = from_item(item)
    flow_run_id, task_run_id = _task_run_ids(raw)
    owner = task_run_owner(task_run_id, flow_run_id, raw.get("cache_key"))
    result = refs.from_map(raw.get("result"), owner)
    own = _own_ids(raw.get("flow_run_id"), str(raw["id"]))
    return TaskRun(
        id=raw["id"],
        name=raw["name"],
        task_key=raw["task_key"],
        dynamic_key=raw["dynamic_key"],
        task_name=raw["task_name"],
        flow_run_id=raw.get("flow_run_id"),
        task_version=raw.get("task_version"),
        tags=tuple(raw.get("tags") or ()),
        task_inputs=json.loads(raw["task_inputs"]) if raw.get("task_inputs") else {},
        cache_key=raw.get("cache_key"),
        cache_expiration=_moment(raw.get("cache_expiration")),
        state=_with_result(
            state_from_map(raw["state"], own=own) if raw.get("state") else None, result
        ),
        state_history=[state_from_map(s, own=own) for s in history_of(raw)],
        run_count=int(raw.get("run_count", 0)),
        created=_moment(raw.get("created")),
        start_time=_moment(raw.get("start_time")),
        end_time=_moment(raw.get("end_time")),
        result_record=result,
        version=int(raw.get("version", 0)),
        replay_key=raw.get("replay_key"),
        call_index=_optional_int(raw.get("call_index")),
        flow_run_attempt=_optional_int(raw.get("attempt")),
        recent_transition_ids=list(raw.get("recent_transition_ids") or ()),
        retries=int(raw.get("retries", 0)),
        heartbeat=_moment(raw.get("heartbeat")),
        sweep_due=_moment(raw.get("sweep_due")),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
