"""Records of flow runs, task runs and log entries, as the engine and backends share them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from stratoflow.results import ResultRecord
from stratoflow.states import State

STATE_HISTORY_LIMIT = 25
"""How many past states a run keeps (the newest ones)."""


@dataclass(slots=True)
class FlowRun:
    id: str
    name: str
    flow_name: str
    flow_version: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    parent_flow_run_id: str | None = None
    parent_task_run_id: str | None = None
    deployment_name: str | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    idempotency_key: str | None = None
    expected_start_time: datetime | None = None
    """When a scheduled run should start."""
    auto_scheduled: bool = False
    """Created by the scheduler from a deployment's schedule."""
    enqueued_at: datetime | None = None
    """When its message was sent to the work queue."""
    retries: int = 0
    """The flow's `retries` option, recorded when the run starts (for the crash sweep)."""
    infrastructure_id: str | None = None
    """What runs it outside a worker process, e.g. the ARN of its ECS task."""
    state: State | None = None
    state_history: list[State] = field(default_factory=list)
    run_count: int = 0
    created: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    heartbeat: datetime | None = None
    result_record: ResultRecord | None = None
    version: int = 0
    recent_transition_ids: list[str] = field(default_factory=list)
    waits: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Durable waits of the run by key (`pause-0`, `sleep-1`): what each waits for and
    whether it is over, so that a later attempt passes the ones already done
    (stratoflow.durable)."""
    continuations: int = 0
    """Attempts that continued the run (a resume, a wake-up, a hand-back) rather than
    retrying it: they do not count against `retries`."""
    replay_since: int = 1
    """Task runs of attempts before this one are not replayed (`retry --from-scratch`)."""

    @property
    def state_type(self) -> str | None:
        return self.state.type.value if self.state else None

    @property
    def state_name(self) -> str | None:
        return self.state.name if self.state else None

    @property
    def retries_used(self) -> int:
        """Attempts beyond the first that were retries (not continuations)."""
        return max(self.run_count - 1 - self.continuations, 0)


def assign_flow_run(target: FlowRun, source: FlowRun) -> None:
    """Make `target` equal to `source` in place (a caller's copy of a run catching up
    with a newer read of it)."""
    for name in _FLOW_RUN_FIELDS:
        setattr(target, name, getattr(source, name))


_FLOW_RUN_FIELDS = tuple(f.name for f in fields(FlowRun))


@dataclass(slots=True)
class TaskRun:
    id: str
    name: str
    task_key: str
    dynamic_key: str
    task_name: str
    flow_run_id: str | None = None
    task_version: str | None = None
    tags: tuple[str, ...] = ()
    task_inputs: dict[str, list[str]] = field(default_factory=dict)
    """Upstream task run ids per parameter (and `__wait_for__`)."""
    cache_key: str | None = None
    cache_expiration: datetime | None = None
    state: State | None = None
    state_history: list[State] = field(default_factory=list)
    run_count: int = 0
    created: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    result_record: ResultRecord | None = None
    version: int = 0
    recent_transition_ids: list[str] = field(default_factory=list)
    replay_key: str | None = None
    """Its call's key, the same in every attempt of the flow run (stratoflow.engine.replay)."""
    call_index: int | None = None
    """Its call's position among the calls of its scope."""
    flow_run_attempt: int | None = None
    """The attempt of its flow run that created it."""
    replayed: bool = field(default=False, compare=False)
    """Recorded by an earlier attempt and replayed by this one (not stored)."""
    # Background task runs only (`my_task.delay()`, stratoflow.background):
    retries: int = 0
    """The task's `retries` option, recorded when a task worker claims the run (for the
    crash sweep, which does not have the task's code)."""
    heartbeat: datetime | None = None
    """The last sign of life of the task worker holding the run; None while no worker
    holds it (waiting in the task queue)."""
    sweep_due: datetime | None = None
    """When the background task run sweep looks at the run next, unless it changed by
    then: while a worker holds it, the end of that worker's lease (its heartbeat plus
    `zombie_after_seconds`); while a retry waits for a worker, when its message is sent
    again (stratoflow.background.sweep)."""

    @property
    def state_type(self) -> str | None:
        return self.state.type.value if self.state else None

    @property
    def state_name(self) -> str | None:
        return self.state.name if self.state else None

    @property
    def upstream_task_run_ids(self) -> set[str]:
        return {run_id for ids in self.task_inputs.values() for run_id in ids}


@dataclass(frozen=True, slots=True)
class LogEntry:
    timestamp: datetime
    level: int
    level_name: str
    logger: str
    message: str
    flow_run_id: str | None = None
    task_run_id: str | None = None
    flow_run_name: str | None = None
    task_run_name: str | None = None


@dataclass(frozen=True, slots=True)
class RunInputRecord:
    """A stored flow run input (the fields of Prefect's `FlowRunInput`): `value` is JSON
    text, validated by whoever reads it (`stratoflow.input`)."""

    flow_run_id: str
    key: str
    value: str
    created: datetime
    sender: str | None = None
