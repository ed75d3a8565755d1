"""What every worker decides from a run's stored state before claiming it, and claims
that survive a benign concurrent change, on the memory backend."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from stratoflow.backends.memory import MemoryBackend
from stratoflow.exceptions import ConflictError, ObjectNotFound
from stratoflow.models import FlowRun
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.states import (
    AwaitingRetry,
    Cancelling,
    Completed,
    Late,
    Pending,
    Running,
    Scheduled,
    StateType,
)
from stratoflow.workers.ecs import EcsConfig, EcsConfigError, flow_run_id_of_task
from stratoflow.workers.messages import FlowRunMessage
from stratoflow.workers.triage import Drop, Ready, Refuse, SendOn, due_time, triage

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
DEFAULT_QUEUE = "sf-default-default"
"""The SQS queue of work pool and queue "default" with the queue prefix "sf"."""


def platform_with(backend: MemoryBackend) -> Any:
    return SimpleNamespace(
        services=SimpleNamespace(backend=backend), queues=SimpleNamespace(prefix="sf")
    )


def scheduled_run(
    backend: MemoryBackend, *, start: datetime = NOW, pool: str | None = None, queue: str = "q"
) -> FlowRun:
    run = FlowRun(
        id=f"run-{len(backend.list_flow_runs())}",
        name="r",
        flow_name="f",
        deployment_name="d",
        expected_start_time=start,
        state=Scheduled(scheduled_time=start.isoformat()),
        work_pool_name=pool,
        work_queue_name=queue if pool else None,
    )
    backend.create_flow_run(run)
    return run


def decide(
    backend: MemoryBackend,
    run_id: str,
    now: datetime = NOW,
    *,
    queue_name: str = DEFAULT_QUEUE,
    **claimed: str,
) -> Any:
    message = FlowRunMessage(flow_run_id=run_id, **claimed)
    return triage(platform_with(backend), message, now, queue_name=queue_name)


def test_a_due_scheduled_run_is_ready():
    backend = MemoryBackend()
    run = scheduled_run(backend)
    assert isinstance(decide(backend, run.id, NOW + timedelta(seconds=0.5)), Ready)


def test_a_run_due_later_is_sent_on_with_the_time_left():
    backend = MemoryBackend()
    run = scheduled_run(backend, start=NOW + timedelta(minutes=20))
    decision = decide(backend, run.id)
    assert isinstance(decision, SendOn)
    assert decision.delay_seconds == 1200


def test_a_retry_is_due_at_its_own_scheduled_time():
    backend = MemoryBackend()
    run = scheduled_run(backend)
    backend.set_flow_run_state(run.id, Pending())
    backend.set_flow_run_state(run.id, Running())
    backend.set_flow_run_state(run.id, AwaitingRetry(scheduled_time=NOW + timedelta(minutes=30)))
    stored = backend.read_flow_run(run.id)
    assert due_time(stored) == NOW + timedelta(minutes=30)
    assert isinstance(decide(backend, run.id), SendOn)


@pytest.mark.parametrize(
    ("states", "reason"),
    [
        ([Pending(), Running()], "another worker has it"),
        ([Pending(), Running(), Completed()], "already Completed"),
    ],
)
def test_stale_and_duplicate_messages_are_dropped(states: list[Any], reason: str):
    backend = MemoryBackend()
    run = scheduled_run(backend)
    for state in states:
        backend.set_flow_run_state(run.id, state)
    decision = decide(backend, run.id)
    assert isinstance(decision, Drop)
    assert reason in decision.reason


def test_an_unknown_run_is_dropped():
    assert "does not exist" in decide(MemoryBackend(), "missing").reason


def test_a_run_cancelled_while_it_waited_in_its_queue_ends_cancelled():
    backend = MemoryBackend()
    run = scheduled_run(backend)
    backend.set_flow_run_state(run.id, Cancelling())
    decision = decide(backend, run.id)
    assert isinstance(decision, Drop)
    assert backend.read_flow_run(run.id).state_name == "Cancelled"


def test_a_cancelling_run_that_a_process_runs_is_left_to_it():
    backend = MemoryBackend()
    run = scheduled_run(backend)
    for state in (Pending(), Running(), Cancelling()):
        backend.set_flow_run_state(run.id, state)
    assert isinstance(decide(backend, run.id), Drop)
    assert backend.read_flow_run(run.id).state_name == "Cancelling"


def test_a_run_of_another_pool_is_refused_and_left_as_it_was():
    backend = MemoryBackend()
    run = scheduled_run(backend, pool="onprem", queue="q")
    backend.set_flow_run_state(run.id, Cancelling())  # even a write triage would make
    before = backend.read_flow_run(run.id)
    decision = decide(backend, run.id, queue_name="sf-lambda-q")
    assert isinstance(decision, Refuse)
    for part in (run.id, "'onprem'", "'q'", "'sf-onprem-q'", "'sf-lambda-q'", "send it to"):
        assert part in decision.reason
    assert backend.read_flow_run(run.id) == before
    # On its own queue the same run is triaged as usual.
    assert not isinstance(decide(backend, run.id, queue_name="sf-onprem-q"), Refuse)


def test_a_run_of_another_queue_of_the_same_pool_is_refused():
    backend = MemoryBackend()
    run = scheduled_run(backend, pool="etl", queue="high")
    assert isinstance(decide(backend, run.id, queue_name="sf-etl-low"), Refuse)
    assert isinstance(decide(backend, run.id, queue_name="sf-etl-high"), Ready)


def test_a_message_claiming_another_pool_or_queue_than_its_runs_is_refused():
    backend = MemoryBackend()
    run = scheduled_run(backend)
    own = {"work_pool": "default", "work_queue": "default"}
    assert isinstance(decide(backend, run.id, **own), Ready)
    refused = decide(backend, run.id, work_pool="default", work_queue="other")
    assert isinstance(refused, Refuse)
    assert "claims work pool 'default', work queue 'other'" in refused.reason
    assert isinstance(decide(backend, run.id, work_pool="etl"), Refuse)


def test_a_claim_that_loses_to_a_benign_change_is_tried_again(monkeypatch: pytest.MonkeyPatch):
    backend = MemoryBackend()
    run = scheduled_run(backend)
    original = backend.set_flow_run_state
    calls = []

    def marked_late_first(flow_run_id: str, state: Any, **kwargs: Any) -> Any:
        calls.append(state.name)
        if len(calls) == 1:  # the scheduler marks it Late between our read and write
            original(flow_run_id, Late())
            raise ConflictError("changed")
        return original(flow_run_id, state, **kwargs)

    monkeypatch.setattr(backend, "set_flow_run_state", marked_late_first)
    claimed = claim_flow_run(backend, run.id, worker="w")
    assert claimed is not None
    assert claimed.state_name == "Pending"
    assert calls == ["Pending", "Pending"]


def test_of_two_claims_one_wins():
    backend = MemoryBackend()
    run = scheduled_run(backend)
    assert claim_flow_run(backend, run.id, worker="a") is not None
    assert claim_flow_run(backend, run.id, worker="b") is None
    state = backend.read_flow_run(run.id).state
    assert state is not None
    assert state.type is StateType.PENDING
    assert state.details["worker"] == "a"


# The first read is eventually consistent: only a Ready is taken from it


class StaleFirst(MemoryBackend):
    """A backend whose eventually consistent reads return an older copy of some runs (or
    nothing: a run created a moment ago), as DynamoDB's may."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: dict[str, FlowRun | None] = {}
        self.reads: list[bool] = []

    def read_flow_run(self, flow_run_id: str, *, consistent: bool = True) -> FlowRun:
        self.reads.append(consistent)
        if not consistent and flow_run_id in self.stale:
            older = self.stale[flow_run_id]
            if older is None:
                raise ObjectNotFound(f"No flow run with id {flow_run_id!r}")
            return older
        return super().read_flow_run(flow_run_id)


def test_a_ready_run_is_decided_on_one_eventually_consistent_read() -> None:
    backend = StaleFirst()
    run = scheduled_run(backend)
    assert isinstance(decide(backend, run.id), Ready)
    assert backend.reads == [False]


def test_a_run_the_stale_read_does_not_show_yet_is_read_again_and_run() -> None:
    backend = StaleFirst()
    run = scheduled_run(backend)
    backend.stale[run.id] = None
    assert isinstance(decide(backend, run.id), Ready)
    assert backend.reads == [False, True]


def test_a_retry_behind_a_stale_running_state_is_read_again_and_run() -> None:
    backend = StaleFirst()
    run = scheduled_run(backend)
    for state in (Pending(), Running()):
        backend.set_flow_run_state(run.id, state)
    backend.stale[run.id] = copy.deepcopy(backend.read_flow_run(run.id))
    backend.set_flow_run_state(run.id, AwaitingRetry(scheduled_time=NOW.isoformat()))
    backend.reads.clear()
    decision = decide(backend, run.id)
    assert isinstance(decision, Ready)
    assert decision.run.state_name == "AwaitingRetry"
    assert backend.reads == [False, True]


@pytest.mark.parametrize("later", [[Cancelling()], [Pending()], [Pending(), Running()]])
def test_a_stale_ready_never_claims_a_run_that_moved_on(later: list[Any]) -> None:
    """A stale read may say Ready; the claim is conditional on the version it read."""
    backend = StaleFirst()
    run = scheduled_run(backend)
    backend.stale[run.id] = copy.deepcopy(run)
    for state in later:
        backend.set_flow_run_state(run.id, state)
    decision = decide(backend, run.id)
    assert isinstance(decision, Ready)  # from the stale read
    assert claim_flow_run(backend, run.id, worker="w", read=decision.run) is None
    assert backend.read_flow_run(run.id).state_name == later[-1].name


def test_a_cancellation_is_decided_on_a_consistent_read_only() -> None:
    backend = StaleFirst()
    run = scheduled_run(backend)
    backend.set_flow_run_state(run.id, Cancelling())
    backend.reads.clear()
    assert isinstance(decide(backend, run.id), Drop)
    assert backend.reads[:2] == [False, True]  # then the memory backend's own, to write
    assert backend.read_flow_run(run.id).state_name == "Cancelled"


def test_the_flow_run_id_is_found_in_a_tasks_container_command():
    detail = {
        "overrides": {
            "containerOverrides": [
                {"name": "sidecar"},
                {
                    "name": "flow-run",
                    "command": ["strato", "flow-run", "execute", "abc", "--from-queue", "q"],
                },
            ]
        }
    }
    assert flow_run_id_of_task(detail) == "abc"
    assert flow_run_id_of_task({"overrides": {"containerOverrides": [{"command": ["x"]}]}}) is None
    assert flow_run_id_of_task({}) is None


def test_the_ecs_configuration_comes_from_the_environment():
    config = EcsConfig.from_env(
        {
            "STRATOFLOW_ECS_CLUSTER": "c",
            "STRATOFLOW_ECS_TASK_DEFINITION": "td:3",
            "STRATOFLOW_ECS_SUBNETS": "subnet-a, subnet-b",
            "STRATOFLOW_ECS_SECURITY_GROUPS": "sg-1",
        }
    )
    assert config == EcsConfig("c", "td:3", ("subnet-a", "subnet-b"), ("sg-1",), "flow-run")
    with pytest.raises(EcsConfigError, match="STRATOFLOW_ECS_SUBNETS"):
        EcsConfig.from_env({"STRATOFLOW_ECS_CLUSTER": "c", "STRATOFLOW_ECS_TASK_DEFINITION": "t"})
