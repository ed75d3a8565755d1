"""The client's flow run, task run and log methods: `stratoflow.runs` and the current
backend, with Prefect's filters applied to what they list."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from uuid import UUID

from stratoflow import runs
from stratoflow.client.orchestration._deployments import deployments_matching, pools_matching
from stratoflow.client.schemas import sorting
from stratoflow.client.schemas._filtering import Operator, UnsupportedFilter, pinned
from stratoflow.client.schemas.filters import (
    DeploymentFilter,
    FlowFilter,
    FlowRunFilter,
    LogFilter,
    TaskRunFilter,
    WorkPoolFilter,
    WorkQueueFilter,
)
from stratoflow.client.schemas.responses import (
    OrchestrationResult,
    SetStateStatus,
    StateRejectDetails,
)
from stratoflow.client.schemas.sorting import FlowRunSort, LogSort, TaskRunSort
from stratoflow.context import get_services
from stratoflow.exceptions import InvalidTransitionError, ObjectNotFound
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.states import State, StateType

DEFAULT_LIMIT = 200
"""What a listing returns at most when `limit` is None: Prefect's server default
(PREFECT_SERVER_API_DEFAULT_LIMIT)."""


class FlowRunMethods:
    def read_flow_run(self, flow_run_id: UUID | str) -> FlowRun:
        """Raises ObjectNotFound for an unknown id."""
        return runs.read_flow_run(str(flow_run_id))

    def read_flow_runs(
        self,
        *,
        flow_filter: FlowFilter | None = None,
        flow_run_filter: FlowRunFilter | None = None,
        task_run_filter: TaskRunFilter | None = None,
        deployment_filter: DeploymentFilter | None = None,
        work_pool_filter: WorkPoolFilter | None = None,
        work_queue_filter: WorkQueueFilter | None = None,
        sort: FlowRunSort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[FlowRun]:
        """The runs every filter matches, newest first unless `sort` says otherwise; at
        most `limit` (200 when None, as Prefect's server), from `offset`."""
        count = DEFAULT_LIMIT if limit is None else limit
        found = select_flow_runs(
            flow_filter=flow_filter,
            flow_run_filter=flow_run_filter,
            task_run_filter=task_run_filter,
            deployment_filter=deployment_filter,
            work_pool_filter=work_pool_filter,
            work_queue_filter=work_queue_filter,
            # Sorted here: every match first. Newest first is the listing's own order.
            limit=None if sort is not None else offset + count,
        )
        if sort is not None:
            found = sorting.sort(found, sort, FlowRunSort)
        return found[offset : offset + count]

    def count_flow_runs(
        self,
        *,
        flow_filter: FlowFilter | None = None,
        flow_run_filter: FlowRunFilter | None = None,
        task_run_filter: TaskRunFilter | None = None,
        deployment_filter: DeploymentFilter | None = None,
        work_pool_filter: WorkPoolFilter | None = None,
        work_queue_filter: WorkQueueFilter | None = None,
    ) -> int:
        return len(
            select_flow_runs(
                flow_filter=flow_filter,
                flow_run_filter=flow_run_filter,
                task_run_filter=task_run_filter,
                deployment_filter=deployment_filter,
                work_pool_filter=work_pool_filter,
                work_queue_filter=work_queue_filter,
                limit=None,
            )
        )

    def set_flow_run_state(
        self, flow_run_id: UUID | str, state: State, force: bool = False
    ) -> OrchestrationResult:
        """Propose `state`; a transition the state table refuses is answered REJECT (the
        run keeps its state), as Prefect's server does. Cancelling (not forced) goes
        through `cancel_flow_run`, so a run executing in this process stops at once."""
        run_id = str(flow_run_id)
        if state.type is StateType.CANCELLING and not force:
            return _orchestrate(
                lambda: runs.cancel_flow_run(run_id), lambda: runs.read_flow_run(run_id).state
            )
        backend = get_services().backend
        return _orchestrate(
            lambda: backend.set_flow_run_state(run_id, _own_copy(state), force=force).state,
            lambda: runs.read_flow_run(run_id).state,
        )

    def read_flow_run_states(self, flow_run_id: UUID | str) -> list[State]:
        """Oldest first, the current one last (a run keeps its last 25)."""
        run = runs.read_flow_run(str(flow_run_id))
        return [*run.state_history, *([run.state] if run.state else [])]

    def delete_flow_run(self, flow_run_id: UUID | str) -> None:
        """Delete a run with its task runs; raises ObjectNotFound for an unknown id."""
        if not get_services().backend.delete_flow_run(str(flow_run_id)):
            raise ObjectNotFound(f"No flow run with id {str(flow_run_id)!r}.")

    def read_task_run(
        self, task_run_id: UUID | str, *, flow_run_id: UUID | str | None = None
    ) -> TaskRun:
        """With the AWS backend, a flow's task run is found with its `flow_run_id`
        (a background task run without)."""
        return get_services().backend.read_task_run(
            str(task_run_id), flow_run_id=_text(flow_run_id)
        )

    def read_task_runs(
        self,
        *,
        flow_filter: FlowFilter | None = None,
        flow_run_filter: FlowRunFilter | None = None,
        task_run_filter: TaskRunFilter | None = None,
        deployment_filter: DeploymentFilter | None = None,
        sort: TaskRunSort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[TaskRun]:
        """The task runs of the flow runs `task_run_filter.flow_run_id` names or the flow
        run filters choose (one of them is needed: task runs are kept per flow run), in
        creation order within each flow run unless `sort` says otherwise."""
        named = pinned(task_run_filter, "flow_run_id")
        flow_run_ids = None if named is None else sorted(named)
        if flow_filter or flow_run_filter or deployment_filter:
            chosen = select_flow_runs(
                flow_filter=flow_filter,
                flow_run_filter=flow_run_filter,
                deployment_filter=deployment_filter,
                limit=None,
            )
            flow_run_ids = [r.id for r in chosen if named is None or r.id in named]
        if flow_run_ids is None:
            raise UnsupportedFilter(
                "stratoflow reads task runs per flow run: pass task_run_filter="
                "TaskRunFilter(flow_run_id={'any_': [flow_run_id]}), or a flow_run_filter, "
                "flow_filter or deployment_filter choosing the flow runs."
            )
        found = [
            task_run
            for flow_run_id in flow_run_ids
            for task_run in runs.read_task_runs(flow_run_id)
            if task_run_filter is None or task_run_filter.matches(task_run)
        ]
        if sort is not None:
            found = sorting.sort(found, sort, TaskRunSort)
        return found[offset : offset + (DEFAULT_LIMIT if limit is None else limit)]

    def set_task_run_state(
        self,
        task_run_id: UUID | str,
        state: State,
        force: bool = False,
        *,
        flow_run_id: UUID | str | None = None,
    ) -> OrchestrationResult:
        """As `set_flow_run_state`; `flow_run_id` as for `read_task_run`."""
        backend = get_services().backend
        run_id, parent = str(task_run_id), _text(flow_run_id)
        return _orchestrate(
            lambda: (
                backend.set_task_run_state(
                    run_id, _own_copy(state), force=force, flow_run_id=parent
                ).state
            ),
            lambda: backend.read_task_run(run_id, flow_run_id=parent).state,
        )

    def read_task_run_states(
        self, task_run_id: UUID | str, *, flow_run_id: UUID | str | None = None
    ) -> list[State]:
        run = self.read_task_run(task_run_id, flow_run_id=flow_run_id)
        return [*run.state_history, *([run.state] if run.state else [])]

    def read_logs(
        self,
        log_filter: LogFilter | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort: LogSort | None = None,
    ) -> list[LogEntry]:
        """The log lines of the flow runs `log_filter.flow_run_id` names (it is needed:
        logs are kept per flow run), oldest first unless `sort` says otherwise."""
        flow_run_ids = pinned(log_filter, "flow_run_id")
        if log_filter is None or flow_run_ids is None:
            raise UnsupportedFilter(
                "stratoflow reads logs per flow run: pass log_filter="
                "LogFilter(flow_run_id={'any_': [flow_run_id]})."
            )
        task_run_ids = pinned(log_filter, "task_run_id")
        one_task_run = next(iter(task_run_ids)) if task_run_ids and len(task_run_ids) == 1 else None
        found = [
            entry
            for flow_run_id in sorted(flow_run_ids)
            for entry in runs.read_logs(flow_run_id, task_run_id=one_task_run)
            if log_filter.matches(entry)
        ]
        found = sorting.sort(found, sort or LogSort.TIMESTAMP_ASC, LogSort)
        start = offset or 0
        return found[start : start + (DEFAULT_LIMIT if limit is None else limit)]


def select_flow_runs(
    *,
    flow_filter: FlowFilter | None = None,
    flow_run_filter: FlowRunFilter | None = None,
    task_run_filter: TaskRunFilter | None = None,
    deployment_filter: DeploymentFilter | None = None,
    work_pool_filter: WorkPoolFilter | None = None,
    work_queue_filter: WorkQueueFilter | None = None,
    limit: int | None,
) -> list[FlowRun]:
    """The flow runs every filter matches, newest first (`runs.query_flow_runs`, reading
    one deployment's or one state type's index when the filters pin one)."""
    if task_run_filter is not None:
        raise UnsupportedFilter(
            "stratoflow does not select flow runs by their task runs: read the task runs "
            "(read_task_runs) and then their flow runs (read_flow_run)."
        )
    deployments = None
    if deployment_filter is not None:
        deployments = {d.name for d in deployments_matching(deployment_filter)}
    pools = None if work_pool_filter is None else {p.name for p in pools_matching(work_pool_filter)}
    named = pinned(flow_run_filter, "deployment_id")
    if named is not None:
        deployments = named if deployments is None else deployments & named
    if deployments is not None and not deployments:
        return []

    def wanted(run: FlowRun) -> bool:
        return (
            (flow_filter is None or flow_filter.matches(run))
            and (flow_run_filter is None or flow_run_filter.matches(run))
            and (deployments is None or run.deployment_name in deployments)
            and (pools is None or run.work_pool_name in pools)
            and (
                work_queue_filter is None
                or work_queue_filter.matches_values({"name": run.work_queue_name})
            )
        )

    state_types = None
    if flow_run_filter is not None and flow_run_filter.operator is Operator.and_:
        state_types = pinned(flow_run_filter.state, "type")
    return runs.query_flow_runs(
        deployment=next(iter(deployments)) if deployments and len(deployments) == 1 else None,
        state=next(iter(state_types)) if state_types and len(state_types) == 1 else None,
        limit=limit,
        where=wanted,
    )


def _orchestrate(
    change: Callable[[], State], current: Callable[[], State | None]
) -> OrchestrationResult:
    try:
        state = change()
    except InvalidTransitionError as exc:
        return OrchestrationResult(current(), SetStateStatus.REJECT, StateRejectDetails(str(exc)))
    return OrchestrationResult(state, SetStateStatus.ACCEPT)


def _own_copy(state: State) -> State:
    # The backend keeps the state it is given: the caller's object (often proposed for
    # several runs in a loop) must not become one run's state.
    return dataclasses.replace(state, details=dict(state.details))


def _text(run_id: UUID | str | None) -> str | None:
    return None if run_id is None else str(run_id)
