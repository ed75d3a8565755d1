"""Events derived from stream records (pure): items built by the real codec, changed the
way the backends change them (apply_transition), deserialized as the stream delivers them."""

from __future__ import annotations

import copy
import json
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stratoflow import resources
from stratoflow.backends.aws.heartbeats import heartbeat_item
from stratoflow.backends.aws.items import flow_run_to_item, from_item, task_run_to_item, to_item
from stratoflow.events.derive import (
    StreamChange,
    UnreadableRecord,
    derive_events,
    event_id,
    is_event_item,
)
from stratoflow.events.models import Event, Resource
from stratoflow.events.store import event_to_item
from stratoflow.models import FlowRun, TaskRun
from stratoflow.orchestration.transitions import apply_transition
from stratoflow.states import (
    Completed,
    Crashed,
    Failed,
    Late,
    Pending,
    Resuming,
    Running,
    Scheduled,
    State,
    Suspended,
)

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def at(state: State, seconds: float) -> State:
    state.timestamp = T0 + timedelta(seconds=seconds)
    return state


def image(low_level: dict[str, Any]) -> dict[str, Any]:
    """As the stream delivers an item: the low-level item, deserialized."""
    return from_item(copy.deepcopy(low_level))


def flow_run(**fields: Any) -> FlowRun:
    values: dict[str, Any] = {
        "id": "run-1",
        "name": "brave-otter",
        "flow_name": "etl",
        "tags": ("nightly", "team-a"),
        "deployment_name": "etl-nightly",
        "work_pool_name": "default",
        "work_queue_name": "high",
        "created": T0,
        **fields,
    }
    return FlowRun(**values)


def insert(item: dict[str, Any]) -> StreamChange:
    return StreamChange("INSERT", new_image=image(item))


def modify(old: dict[str, Any], new: dict[str, Any], **extra: Any) -> StreamChange:
    return StreamChange("MODIFY", new_image=image(new), old_image=image(old), **extra)


def transition(run: FlowRun | TaskRun, state: State) -> None:
    apply_transition(run, state, force=True)


# Flow runs


def test_created_with_a_state_derives_its_state_event() -> None:
    run = flow_run(state=at(Scheduled(), 0))
    [event] = derive_events(insert(flow_run_to_item(run)))
    assert event.event == "stratoflow.flow-run.Scheduled"
    assert event.occurred == T0
    assert event.resource.labels == {
        "stratoflow.resource.id": "stratoflow.flow-run.run-1",
        "stratoflow.resource.name": "brave-otter",
        "stratoflow.state-type": "SCHEDULED",
        "stratoflow.state-name": "Scheduled",
        "stratoflow.state-message": "",
    }
    related = {(r.role, r.id) for r in event.related}
    assert related == {
        ("flow", "stratoflow.flow.etl"),
        ("deployment", "stratoflow.deployment.etl-nightly"),
        ("work-queue", "stratoflow.work-queue.default/high"),
        ("work-pool", "stratoflow.work-pool.default"),
        ("tag", "stratoflow.tag.nightly"),
        ("tag", "stratoflow.tag.team-a"),
    }
    assert event.payload["intended"] == {"from": None, "to": "SCHEDULED"}
    assert event.payload["initial_state"] is None
    assert event.payload["validated_state"]["name"] == "Scheduled"
    assert event.follows is None


def test_pausing_and_resuming_derive_paused_and_resumed_events() -> None:
    run = flow_run(state=at(Running(), 0))
    running = flow_run_to_item(run)
    transition(run, at(Suspended("waiting for input", pause_key="pause-0"), 5))
    suspended = flow_run_to_item(run)
    transition(run, at(Resuming("Resumed."), 9))
    resuming = flow_run_to_item(run)

    entered = derive_events(modify(running, suspended))
    assert [e.event for e in entered] == [
        "stratoflow.flow-run.Suspended",
        "stratoflow.flow-run.Paused",
    ]
    assert len({e.id for e in entered}) == 2
    left = derive_events(modify(suspended, resuming))
    assert [e.event for e in left] == [
        "stratoflow.flow-run.Resuming",
        "stratoflow.flow-run.Resumed",
    ]
    assert derive_events(modify(suspended, resuming)) == left  # the same ids when redelivered


def test_created_without_a_state_derives_nothing() -> None:
    assert derive_events(insert(flow_run_to_item(flow_run()))) == []


def test_a_transition_derives_one_event_following_the_previous_one() -> None:
    run = flow_run(state=at(Scheduled(), 0))
    created = flow_run_to_item(run)
    [scheduled] = derive_events(insert(created))
    transition(run, at(Pending(), 5))
    pending = flow_run_to_item(run)
    transition(run, at(Running(), 6))
    running = flow_run_to_item(run)

    [event] = derive_events(modify(pending, running))
    assert event.event == "stratoflow.flow-run.Running"
    assert event.occurred == T0 + timedelta(seconds=6)
    assert event.payload == {
        "intended": {"from": "PENDING", "to": "RUNNING"},
        "initial_state": {
            "type": "PENDING",
            "name": "Pending",
            "message": None,
            "timestamp": (T0 + timedelta(seconds=5)).isoformat(),
        },
        "validated_state": {
            "type": "RUNNING",
            "name": "Running",
            "message": None,
            "timestamp": (T0 + timedelta(seconds=6)).isoformat(),
        },
    }
    [pending_event] = derive_events(modify(created, pending))
    assert pending_event.follows == scheduled.id
    assert event.follows == pending_event.id


@pytest.mark.parametrize(
    ("state", "name", "message"),
    [
        (Completed(), "Completed", ""),
        (Failed("boom: ZeroDivisionError"), "Failed", "boom: ZeroDivisionError"),
        (Crashed("heartbeat lost"), "Crashed", "heartbeat lost"),
    ],
)
def test_final_states_are_named_by_their_state_name(state: State, name: str, message: str) -> None:
    run = flow_run(state=at(Running(), 0))
    before = flow_run_to_item(run)
    transition(run, at(state, 10))
    [event] = derive_events(modify(before, flow_run_to_item(run)))
    assert event.event == f"stratoflow.flow-run.{name}"
    assert event.resource.get("stratoflow.state-name") == name
    assert event.resource.get("stratoflow.state-message") == message


def test_late_is_its_own_event() -> None:
    run = flow_run(state=at(Scheduled(), 0))
    before = flow_run_to_item(run)
    transition(run, at(Late(), 60))
    [event] = derive_events(modify(before, flow_run_to_item(run)))
    assert event.event == "stratoflow.flow-run.Late"
    assert event.resource.get("stratoflow.state-type") == "SCHEDULED"
    assert event.payload["intended"] == {"from": "SCHEDULED", "to": "SCHEDULED"}


def test_ids_are_deterministic_from_run_and_version() -> None:
    run = flow_run(state=at(Running(), 0))
    before = flow_run_to_item(run)
    transition(run, at(Completed(), 10))
    after = flow_run_to_item(run)
    first = derive_events(modify(before, after))
    again = derive_events(modify(before, after))  # a redelivered record
    assert [e.id for e in first] == [e.id for e in again]
    assert first[0].id == event_id("stratoflow.flow-run.run-1", str(run.version))
    other = flow_run(id="run-2", state=at(Running(), 0))
    other_before = flow_run_to_item(other)
    transition(other, at(Completed(), 10))
    [other_event] = derive_events(modify(other_before, flow_run_to_item(other)))
    assert other_event.id != first[0].id


def test_a_heartbeat_item_derives_a_heartbeat_event() -> None:
    run = flow_run(state=at(Running(), 0))
    first = heartbeat_item(run, T0)
    [event] = derive_events(insert(first))
    assert event.event == "stratoflow.flow-run.heartbeat"
    assert event.occurred == T0
    assert event.resource.id == "stratoflow.flow-run.run-1"
    assert event.resource.get("stratoflow.state-name") == "Running"
    assert "stratoflow.deployment.etl-nightly" in {r.id for r in event.related}
    assert derive_events(insert(first))[0].id == event.id  # a redelivered record
    second = heartbeat_item(run, T0 + timedelta(seconds=10))
    [later] = derive_events(modify(first, second))
    assert later.id != event.id and later.occurred == T0 + timedelta(seconds=10)
    assert derive_events(modify(second, second)) == []
    assert derive_events(StreamChange("REMOVE", old_image=image(second))) == []  # expired


def test_a_heartbeat_on_an_item_written_before_heartbeat_items_derives_one() -> None:
    run = flow_run(state=at(Running(), 0))
    before = flow_run_to_item(run)
    legacy = {**before, "heartbeat": {"S": (T0 + timedelta(seconds=10)).isoformat()}}
    [event] = derive_events(modify(before, legacy))
    assert event.event == "stratoflow.flow-run.heartbeat"
    assert event.occurred == T0 + timedelta(seconds=10)
    assert event.resource.get("stratoflow.state-name") == "Running"


def test_other_changes_of_a_flow_run_derive_nothing() -> None:
    run = flow_run(state=at(Scheduled(), 0))
    before = flow_run_to_item(run)
    run.enqueued_at = T0 + timedelta(seconds=1)
    assert derive_events(modify(before, flow_run_to_item(run))) == []
    assert derive_events(StreamChange("REMOVE", old_image=image(before))) == []


def test_a_flow_run_without_deployment_or_queue_relates_to_its_flow_only() -> None:
    run = flow_run(
        state=at(Running(), 0),
        tags=(),
        deployment_name=None,
        work_pool_name=None,
        work_queue_name=None,
    )
    [event] = derive_events(insert(flow_run_to_item(run)))
    assert [(r.role, r.id) for r in event.related] == [("flow", "stratoflow.flow.etl")]


def test_a_garbage_state_is_unreadable() -> None:
    run = flow_run(state=at(Running(), 0))
    item = flow_run_to_item(run)
    broken = copy.deepcopy(item)
    broken["state"] = {"S": "garbage"}
    with pytest.raises(UnreadableRecord, match="not a map"):
        derive_events(modify(item, broken))
    broken["state"] = to_item({"s": {"type": "BOGUS", "name": "x", "timestamp": "t"}})["s"]
    with pytest.raises(UnreadableRecord, match="no valid type"):
        derive_events(modify(item, broken))
    with pytest.raises(UnreadableRecord, match="NEW_AND_OLD_IMAGES"):
        derive_events(StreamChange("MODIFY"))


# Task runs


def task_run(**fields: Any) -> TaskRun:
    values: dict[str, Any] = {
        "id": "task-1",
        "name": "extract-0",
        "task_key": "extract-abc",
        "dynamic_key": "0",
        "task_name": "extract",
        "flow_run_id": "run-1",
        "tags": ("io",),
        "created": T0,
        **fields,
    }
    return TaskRun(**values)


def test_a_batched_task_run_write_derives_every_state_it_went_through() -> None:
    run = task_run()
    transition(run, at(Pending(), 0))
    first = task_run_to_item(run, seq=1)
    # Running and Completed between two flushes: one write, at the same fake time.
    transition(run, at(Running(), 0))
    transition(run, at(Completed(), 0))
    second = task_run_to_item(run, seq=1)

    [pending] = derive_events(insert(first))
    assert pending.event == "stratoflow.task-run.Pending"
    events = derive_events(modify(first, second))
    assert [e.event for e in events] == [
        "stratoflow.task-run.Running",
        "stratoflow.task-run.Completed",
    ]
    running, completed = events
    assert running.follows == pending.id
    assert completed.follows == running.id
    assert running.payload["intended"] == {"from": "PENDING", "to": "RUNNING"}
    assert completed.payload["intended"] == {"from": "RUNNING", "to": "COMPLETED"}
    assert len({pending.id, running.id, completed.id}) == 3
    assert completed.resource.labels["stratoflow.resource.id"] == "stratoflow.task-run.task-1"
    assert completed.resource.labels["stratoflow.resource.name"] == "extract-0"
    related = {(r.role, r.id) for r in completed.related}
    assert related == {
        ("flow-run", "stratoflow.flow-run.run-1"),
        ("task", "stratoflow.task.extract"),
        ("tag", "stratoflow.tag.io"),
    }


def test_a_task_run_first_written_finished_derives_all_its_states() -> None:
    run = task_run()
    for state in (Pending(), Running(), Failed("nope")):
        transition(run, at(state, 1))
    events = derive_events(insert(task_run_to_item(run)))
    assert [e.event.rsplit(".", 1)[1] for e in events] == ["Pending", "Running", "Failed"]
    assert events[-1].resource.get("stratoflow.state-message") == "nope"


def test_task_run_ids_survive_redelivery_and_overlap() -> None:
    run = task_run()
    transition(run, at(Pending(), 0))
    transition(run, at(Running(), 1))
    first = task_run_to_item(run)
    transition(run, at(Completed(), 2))
    second = task_run_to_item(run)
    from_insert = {e.event: e.id for e in derive_events(insert(first))}
    from_modify = {e.event: e.id for e in derive_events(modify(first, second))}
    assert set(from_modify) == {"stratoflow.task-run.Completed"}
    # An INSERT seen again later with everything: the same ids for the same states.
    all_states = {e.event: e.id for e in derive_events(insert(second))}
    assert all_states == {**from_insert, **from_modify}


def test_a_task_run_outside_a_flow_run() -> None:
    run = task_run(flow_run_id=None, tags=())
    transition(run, at(Running(), 0))
    item = task_run_to_item(run)
    assert item["pk"]["S"] == "TASKRUN#task-1"
    [event] = derive_events(insert(item))
    assert event.event == "stratoflow.task-run.Running"
    assert [r.role for r in event.related] == ["task"]


# Deployments and work pools


def deployment_item(name: str = "etl-nightly", **fields: Any) -> dict[str, Any]:
    definition = {
        "name": name,
        "flow_name": "etl",
        "work_pool": "default",
        "work_queue": "high",
        "tags": ["nightly"],
        "paused": False,
        "created": T0.isoformat(),
        "updated": T0.isoformat(),
        **fields,
    }
    return to_item(
        {
            **resources.deployment_key(name),
            "name": name,
            "definition": json.dumps(definition),
            "paused": definition["paused"],
        }
    )


def test_deployment_created_updated_paused_resumed_deleted() -> None:
    created = deployment_item()
    [event] = derive_events(insert(created))
    assert event.event == "stratoflow.deployment.created"
    assert event.resource.labels == {
        "stratoflow.resource.id": "stratoflow.deployment.etl-nightly",
        "stratoflow.resource.name": "etl-nightly",
    }
    assert {(r.role, r.id) for r in event.related} == {
        ("flow", "stratoflow.flow.etl"),
        ("work-queue", "stratoflow.work-queue.default/high"),
        ("work-pool", "stratoflow.work-pool.default"),
        ("tag", "stratoflow.tag.nightly"),
    }
    later = (T0 + timedelta(hours=1)).isoformat()
    updated = deployment_item(updated=later, parameters={"n": 2})
    [event] = derive_events(modify(created, updated))
    assert event.event == "stratoflow.deployment.updated"
    assert event.payload == {"changed": ["parameters", "updated"]}
    assert event.occurred == T0 + timedelta(hours=1)

    paused = deployment_item(updated=later, parameters={"n": 2}, paused=True)
    when = T0 + timedelta(hours=2)
    [event] = derive_events(modify(updated, paused, approximate_time=when))
    assert (event.event, event.occurred) == ("stratoflow.deployment.paused", when)
    [event] = derive_events(modify(paused, updated))
    assert event.event == "stratoflow.deployment.resumed"
    # Redeployed and paused in one write: both.
    both = deployment_item(updated=T0.isoformat(), paused=True)
    assert [e.event for e in derive_events(modify(updated, both))] == [
        "stratoflow.deployment.updated",
        "stratoflow.deployment.paused",
    ]
    [event] = derive_events(StreamChange("REMOVE", old_image=image(updated)))
    assert event.event == "stratoflow.deployment.deleted"


def test_pausing_twice_gives_two_events_with_real_sequence_numbers() -> None:
    running, paused = deployment_item(), deployment_item(paused=True)
    first = derive_events(modify(running, paused, sequence_number="100"))
    second = derive_events(modify(running, paused, sequence_number="300"))
    assert first[0].id != second[0].id
    assert derive_events(modify(running, paused, sequence_number="100"))[0].id == first[0].id


def work_pool_item(queues: list[dict[str, Any]]) -> dict[str, Any]:
    definition = {"name": "gpu", "type": "process", "queues": queues}
    return to_item(
        {**resources.work_pool_key("gpu"), "name": "gpu", "definition": json.dumps(definition)}
    )


def test_work_queue_paused_and_resumed() -> None:
    before = work_pool_item([{"name": "high"}, {"name": "low", "paused": True}])
    after = work_pool_item([{"name": "high", "paused": True}, {"name": "low"}])
    events = derive_events(modify(before, after, sequence_number="7"))
    assert sorted((e.event, e.resource.id) for e in events) == [
        ("stratoflow.work-queue.paused", "stratoflow.work-queue.gpu/high"),
        ("stratoflow.work-queue.resumed", "stratoflow.work-queue.gpu/low"),
    ]
    assert all(e.related[0].id == "stratoflow.work-pool.gpu" for e in events)
    assert derive_events(modify(after, after)) == []
    [created_paused] = derive_events(insert(work_pool_item([{"name": "q", "paused": True}])))
    assert created_paused.event == "stratoflow.work-queue.paused"
    assert derive_events(StreamChange("REMOVE", old_image=image(after))) == []


def test_a_definition_that_is_not_json_is_unreadable() -> None:
    item = deployment_item()
    item["definition"] = {"S": "{not json"}
    with pytest.raises(UnreadableRecord, match="not JSON"):
        derive_events(insert(item))


# Events and everything else


def user_event() -> Event:
    return Event(
        event="acme.model.trained",
        resource=Resource.of("acme.model.churn"),
        payload={"auc": 0.91},
        occurred=T0,
    )


def test_an_emitted_event_is_passed_on_and_a_derived_one_is_not() -> None:
    event = user_event()
    item = event_to_item(event, derived=False, retention=timedelta(days=7))
    change = insert(item)
    assert is_event_item(change)
    assert derive_events(change) == [event]
    derived = event_to_item(event, derived=True, retention=timedelta(days=7))
    assert derive_events(insert(derived)) == []
    assert derive_events(StreamChange("REMOVE", old_image=image(item))) == []


def test_an_event_item_without_a_valid_document_is_unreadable() -> None:
    item = event_to_item(user_event(), derived=False, retention=timedelta(days=7))
    item["document_z"] = {"B": zlib.compress(b'{"event": ""}')}
    with pytest.raises(UnreadableRecord):
        derive_events(insert(item))


def test_a_compressed_document_that_inflates_without_bound_is_refused() -> None:
    """A worker may write an EVENT# item: a small blob inflating to gigabytes must not
    take the stream handler's memory (stratoflow.events.documents)."""
    item = event_to_item(user_event(), derived=False, retention=timedelta(days=7))
    bomb = zlib.compress(b"{" + b" " * (8 * 1024 * 1024), 9)
    assert len(bomb) < 20_000
    item["document_z"] = {"B": bomb}
    with pytest.raises(UnreadableRecord, match="inflates past"):
        derive_events(insert(item))


@pytest.mark.parametrize(
    "key",
    [
        resources.cache_key("abc"),
        resources.concurrency_key("db"),
        resources.worker_key("default", "host-1"),
        {"pk": "AUTOMATION#a1", "sk": "META"},
    ],
)
def test_other_items_derive_nothing(key: dict[str, str]) -> None:
    item = to_item({**key, "value": "x", "expires_at": 1})
    changed = to_item({**key, "value": "y", "expires_at": 2})
    assert derive_events(insert(item)) == []
    assert derive_events(modify(item, changed)) == []
    assert derive_events(StreamChange("REMOVE", old_image=image(item))) == []


def test_a_compressed_state_history_that_inflates_too_far_is_refused() -> None:
    # A worker writes flow-run items: its state history is inflated with a bound.
    run = flow_run(state=at(Running(), 0))
    transition(run, at(Completed(), 10))
    item = flow_run_to_item(run)
    item["state_history_z"] = {"B": zlib.compress(b"[" + b" " * (1024 * 1024) + b"]")}
    with pytest.raises(UnreadableRecord, match="inflates past"):
        derive_events(insert(item))
