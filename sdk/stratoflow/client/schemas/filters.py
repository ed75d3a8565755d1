"""`prefect.client.schemas.filters` under its Prefect path, for the fields stratoflow's
records have.

    from stratoflow.client.schemas.filters import FlowRunFilter, FlowRunFilterState

    FlowRunFilter(state=FlowRunFilterState(type={"any_": ["FAILED", "CRASHED"]}))
    FlowRunFilter(state={"name": {"any_": ["Late"]}}, tags={"all_": ["etl"]})

Nested dicts work as in Prefect. Ids are text: a flow run's id, and a deployment's name
where Prefect takes a deployment id. A field Prefect has and stratoflow does not (a flow
id, `created_by`, ...) raises a ValidationError that lists the fields that work. Each
filter has `matches(obj)`.
"""

from __future__ import annotations

from typing import ClassVar

from stratoflow.client.schemas._filtering import (
    Criteria,
    IdsIn,
    IdsInOrNot,
    IdsOrNull,
    Names,
    NamesInOrNot,
    NamesOrNull,
    Operator,
    RangeFilter,
    StateTypes,
    TagsFilter,
    TimeFilter,
    UnsupportedFilter,
    ValueFilter,
)
from stratoflow.states import StateType

__all__ = [
    "ArtifactFilter",
    "ArtifactFilterFlowRunId",
    "ArtifactFilterId",
    "ArtifactFilterKey",
    "ArtifactFilterTaskRunId",
    "ArtifactFilterType",
    "DeploymentFilter",
    "DeploymentFilterId",
    "DeploymentFilterName",
    "DeploymentFilterTags",
    "DeploymentFilterWorkQueueName",
    "FlowFilter",
    "FlowFilterName",
    "FlowRunFilter",
    "FlowRunFilterDeploymentId",
    "FlowRunFilterEndTime",
    "FlowRunFilterExpectedStartTime",
    "FlowRunFilterFlowVersion",
    "FlowRunFilterId",
    "FlowRunFilterIdempotencyKey",
    "FlowRunFilterName",
    "FlowRunFilterParentFlowRunId",
    "FlowRunFilterParentTaskRunId",
    "FlowRunFilterStartTime",
    "FlowRunFilterState",
    "FlowRunFilterStateName",
    "FlowRunFilterStateType",
    "FlowRunFilterTags",
    "FlowRunFilterWorkQueueName",
    "LogFilter",
    "LogFilterFlowRunId",
    "LogFilterLevel",
    "LogFilterTaskRunId",
    "LogFilterTimestamp",
    "Operator",
    "TaskRunFilter",
    "TaskRunFilterEndTime",
    "TaskRunFilterFlowRunId",
    "TaskRunFilterId",
    "TaskRunFilterName",
    "TaskRunFilterStartTime",
    "TaskRunFilterState",
    "TaskRunFilterStateName",
    "TaskRunFilterStateType",
    "TaskRunFilterTags",
    "UnsupportedFilter",
    "WorkPoolFilter",
    "WorkPoolFilterName",
    "WorkPoolFilterType",
    "WorkQueueFilter",
    "WorkQueueFilterName",
]

# Flows: stratoflow stores no flow objects; a run or deployment carries its flow's name.


class FlowFilterName(Names):
    """Filter by the flow's name."""


class FlowFilter(Criteria):
    ATTRIBUTES: ClassVar = {"name": "flow_name"}
    name: FlowFilterName | None = None


# Flow runs


class FlowRunFilterId(IdsInOrNot):
    pass


class FlowRunFilterName(Names):
    pass


class FlowRunFilterTags(TagsFilter):
    pass


class FlowRunFilterDeploymentId(IdsOrNull):
    """Filter by the run's deployment: its name (stratoflow's deployment id)."""


class FlowRunFilterWorkQueueName(NamesOrNull):
    pass


class FlowRunFilterStateType(StateTypes):
    pass


class FlowRunFilterStateName(NamesInOrNot):
    pass


class FlowRunFilterState(Criteria):
    ATTRIBUTES: ClassVar = {"type": "type", "name": "name"}
    type: FlowRunFilterStateType | None = None
    name: FlowRunFilterStateName | None = None


class FlowRunFilterFlowVersion(ValueFilter):
    any_: list[str] | None = None


class FlowRunFilterStartTime(TimeFilter):
    pass


class FlowRunFilterEndTime(TimeFilter):
    pass


class FlowRunFilterExpectedStartTime(TimeFilter):
    pass


class FlowRunFilterParentFlowRunId(IdsIn):
    pass


class FlowRunFilterParentTaskRunId(IdsOrNull):
    pass


class FlowRunFilterIdempotencyKey(NamesInOrNot):
    pass


class FlowRunFilter(Criteria):
    ATTRIBUTES: ClassVar = {
        "id": "id",
        "name": "name",
        "tags": "tags",
        "deployment_id": "deployment_name",
        "work_queue_name": "work_queue_name",
        "state": "state",
        "flow_version": "flow_version",
        "start_time": "start_time",
        "end_time": "end_time",
        "expected_start_time": "expected_start_time",
        "parent_flow_run_id": "parent_flow_run_id",
        "parent_task_run_id": "parent_task_run_id",
        "idempotency_key": "idempotency_key",
    }
    id: FlowRunFilterId | None = None
    name: FlowRunFilterName | None = None
    tags: FlowRunFilterTags | None = None
    deployment_id: FlowRunFilterDeploymentId | None = None
    work_queue_name: FlowRunFilterWorkQueueName | None = None
    state: FlowRunFilterState | None = None
    flow_version: FlowRunFilterFlowVersion | None = None
    start_time: FlowRunFilterStartTime | None = None
    end_time: FlowRunFilterEndTime | None = None
    expected_start_time: FlowRunFilterExpectedStartTime | None = None
    parent_flow_run_id: FlowRunFilterParentFlowRunId | None = None
    parent_task_run_id: FlowRunFilterParentTaskRunId | None = None
    idempotency_key: FlowRunFilterIdempotencyKey | None = None


# Task runs


class TaskRunFilterId(IdsIn):
    pass


class TaskRunFilterName(Names):
    pass


class TaskRunFilterTags(TagsFilter):
    pass


class TaskRunFilterStateType(ValueFilter):
    any_: list[StateType] | None = None


class TaskRunFilterStateName(ValueFilter):
    any_: list[str] | None = None


class TaskRunFilterState(Criteria):
    ATTRIBUTES: ClassVar = {"type": "type", "name": "name"}
    type: TaskRunFilterStateType | None = None
    name: TaskRunFilterStateName | None = None


class TaskRunFilterStartTime(TimeFilter):
    pass


class TaskRunFilterEndTime(TimeFilter):
    pass


class TaskRunFilterFlowRunId(IdsIn):
    """The flow runs whose task runs to read (stratoflow keeps task runs under their
    flow run: `read_task_runs` needs them, or a flow run filter)."""


class TaskRunFilter(Criteria):
    ATTRIBUTES: ClassVar = {
        "id": "id",
        "name": "name",
        "tags": "tags",
        "state": "state",
        "start_time": "start_time",
        "end_time": "end_time",
        "flow_run_id": "flow_run_id",
    }
    id: TaskRunFilterId | None = None
    name: TaskRunFilterName | None = None
    tags: TaskRunFilterTags | None = None
    state: TaskRunFilterState | None = None
    start_time: TaskRunFilterStartTime | None = None
    end_time: TaskRunFilterEndTime | None = None
    flow_run_id: TaskRunFilterFlowRunId | None = None


# Deployments: a deployment's id is its name.


class DeploymentFilterId(IdsInOrNot):
    pass


class DeploymentFilterName(Names):
    pass


class DeploymentFilterTags(TagsFilter):
    pass


class DeploymentFilterWorkQueueName(ValueFilter):
    any_: list[str] | None = None


class DeploymentFilter(Criteria):
    ATTRIBUTES: ClassVar = {
        "id": "name",
        "name": "name",
        "tags": "tags",
        "work_queue_name": "work_queue",
    }
    id: DeploymentFilterId | None = None
    name: DeploymentFilterName | None = None
    tags: DeploymentFilterTags | None = None
    work_queue_name: DeploymentFilterWorkQueueName | None = None


# Work pools and queues


class WorkPoolFilterName(ValueFilter):
    any_: list[str] | None = None


class WorkPoolFilterType(ValueFilter):
    any_: list[str] | None = None


class WorkPoolFilter(Criteria):
    ATTRIBUTES: ClassVar = {"name": "name", "type": "type"}
    name: WorkPoolFilterName | None = None
    type: WorkPoolFilterType | None = None


class WorkQueueFilterName(ValueFilter):
    any_: list[str] | None = None
    startswith_: list[str] | None = None


class WorkQueueFilter(Criteria):
    ATTRIBUTES: ClassVar = {"name": "name"}
    name: WorkQueueFilterName | None = None


# Logs


class LogFilterLevel(RangeFilter):
    pass


class LogFilterTimestamp(TimeFilter):
    pass


class LogFilterFlowRunId(IdsIn):
    """The flow runs whose logs to read (`read_logs` needs them)."""


class LogFilterTaskRunId(IdsOrNull):
    pass


class LogFilter(Criteria):
    ATTRIBUTES: ClassVar = {
        "level": "level",
        "timestamp": "timestamp",
        "flow_run_id": "flow_run_id",
        "task_run_id": "task_run_id",
    }
    level: LogFilterLevel | None = None
    timestamp: LogFilterTimestamp | None = None
    flow_run_id: LogFilterFlowRunId | None = None
    task_run_id: LogFilterTaskRunId | None = None


# Artifacts


class ArtifactFilterId(IdsIn):
    pass


class ArtifactFilterKey(ValueFilter):
    any_: list[str] | None = None
    like_: str | None = None
    exists_: bool | None = None


class ArtifactFilterFlowRunId(IdsIn):
    pass


class ArtifactFilterTaskRunId(IdsIn):
    pass


class ArtifactFilterType(NamesInOrNot):
    pass


class ArtifactFilter(Criteria):
    ATTRIBUTES: ClassVar = {
        "id": "id",
        "key": "key",
        "flow_run_id": "flow_run_id",
        "task_run_id": "task_run_id",
        "type": "type",
    }
    id: ArtifactFilterId | None = None
    key: ArtifactFilterKey | None = None
    flow_run_id: ArtifactFilterFlowRunId | None = None
    task_run_id: ArtifactFilterTaskRunId | None = None
    type: ArtifactFilterType | None = None
