"""The client's deployment and work pool methods: the platform's stores and
`stratoflow.deployments` (deployments need the AWS backend, or the local emulator).

`stratoflow.deployments.deploy` is imported by the methods that pause, on first use: it
brings the flow loader and the bundle builder, which reading runs never needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from stratoflow.client.schemas import sorting
from stratoflow.client.schemas.filters import (
    DeploymentFilter,
    FlowFilter,
    FlowRunFilter,
    TaskRunFilter,
    UnsupportedFilter,
    WorkPoolFilter,
    WorkQueueFilter,
)
from stratoflow.client.schemas.objects import WorkQueue
from stratoflow.client.schemas.sorting import DeploymentSort
from stratoflow.deployments.models import Deployment, WorkPoolSpec
from stratoflow.deployments.runs import run_deployment
from stratoflow.exceptions import ObjectNotFound
from stratoflow.models import FlowRun
from stratoflow.platform import get_platform
from stratoflow.resources import DEFAULT_WORK_POOL
from stratoflow.states import State, StateType

_DEFAULT_LIMIT = 200  # Prefect's server default, as for flow runs


class DeploymentMethods:
    def read_deployment(self, deployment_id: UUID | str) -> Deployment:
        """`deployment_id` is the deployment's name (its id in stratoflow)."""
        return get_platform().deployments.get(str(deployment_id))

    def read_deployment_by_name(self, name: str) -> Deployment:
        """`name` as in Prefect, `<flow name>/<deployment name>`, or the deployment's
        name alone (unique in stratoflow)."""
        flow_name, _, deployment_name = name.rpartition("/")
        deployment = get_platform().deployments.get(deployment_name)
        if flow_name and deployment.flow_name != flow_name:
            raise ObjectNotFound(
                f"Deployment {deployment_name!r} runs flow {deployment.flow_name!r}, not "
                f"{flow_name!r}: ask for {deployment.flow_name}/{deployment_name}."
            )
        return deployment

    def read_deployments(
        self,
        *,
        flow_filter: FlowFilter | None = None,
        flow_run_filter: FlowRunFilter | None = None,
        task_run_filter: TaskRunFilter | None = None,
        deployment_filter: DeploymentFilter | None = None,
        work_pool_filter: WorkPoolFilter | None = None,
        work_queue_filter: WorkQueueFilter | None = None,
        limit: int | None = None,
        sort: DeploymentSort | None = None,
        offset: int = 0,
    ) -> list[Deployment]:
        """By name unless `sort` says otherwise; at most `limit` (200 when None)."""
        if flow_run_filter is not None or task_run_filter is not None:
            raise UnsupportedFilter(
                "stratoflow does not select deployments by their runs: read the runs "
                "(read_flow_runs) and their `deployment_name`."
            )
        found = deployments_matching(
            deployment_filter,
            flow_filter=flow_filter,
            work_pool_filter=work_pool_filter,
            work_queue_filter=work_queue_filter,
        )
        if sort is not None:
            found = sorting.sort(found, sort, DeploymentSort)
        return found[offset : offset + (_DEFAULT_LIMIT if limit is None else limit)]

    def create_flow_run_from_deployment(
        self,
        deployment_id: UUID | str,
        *,
        parameters: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        state: State | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        idempotency_key: str | None = None,
        parent_task_run_id: UUID | str | None = None,
        work_queue_name: str | None = None,
        job_variables: dict[str, Any] | None = None,
    ) -> FlowRun:
        """Create a run of the deployment (named by `deployment_id`) and send it to its
        work queue; returns it Scheduled, at once (`run_deployment` with `timeout=0`).
        `state` may be a Scheduled state with a `scheduled_time`."""
        refused = {
            "context": context,
            "parent_task_run_id": parent_task_run_id,
            "work_queue_name": work_queue_name,
            "job_variables": job_variables,
        }
        given = sorted(k for k, v in refused.items() if v)
        if given:
            raise TypeError(
                f"create_flow_run_from_deployment does not take {', '.join(given)} in "
                "stratoflow: a run goes to its deployment's work queue with the deployment's "
                "job variables (change them in stratoflow.yaml)."
            )
        return run_deployment(
            str(deployment_id),
            parameters,
            scheduled_time=_scheduled_time(state),
            flow_run_name=name,
            tags=tuple(tags or ()),
            idempotency_key=idempotency_key,
            timeout=0,
        )

    def pause_deployment(self, deployment_id: UUID | str) -> None:
        """Its schedules stop and its future scheduled runs are removed."""
        self.set_deployment_paused_state(deployment_id, True)

    def resume_deployment(self, deployment_id: UUID | str) -> None:
        self.set_deployment_paused_state(deployment_id, False)

    def set_deployment_paused_state(self, deployment_id: UUID | str, paused: bool) -> None:
        from stratoflow.deployments.deploy import set_deployment_paused

        set_deployment_paused(str(deployment_id), paused)

    def read_work_pool(self, work_pool_name: str) -> WorkPoolSpec:
        return get_platform().work_pools.get(work_pool_name)

    def read_work_pools(
        self,
        limit: int | None = None,
        offset: int = 0,
        work_pool_filter: WorkPoolFilter | None = None,
    ) -> list[WorkPoolSpec]:
        found = pools_matching(work_pool_filter)
        return found[offset : offset + (_DEFAULT_LIMIT if limit is None else limit)]

    def read_work_queues(
        self,
        work_pool_name: str | None = None,
        work_queue_filter: WorkQueueFilter | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[WorkQueue]:
        """The queues of one pool (of every pool when None), by priority."""
        platform = get_platform()
        pools = (
            [platform.work_pools.get(work_pool_name)]
            if work_pool_name is not None
            else platform.work_pools.list()
        )
        found = [
            WorkQueue.of(pool, queue)
            for pool in pools
            for queue in pool.by_priority()
            if work_queue_filter is None or work_queue_filter.matches(queue)
        ]
        start = offset or 0
        return found[start : start + (_DEFAULT_LIMIT if limit is None else limit)]

    def read_work_queue_by_name(self, name: str, work_pool_name: str | None = None) -> WorkQueue:
        """A queue of `work_pool_name` (the default pool when None); raises
        ObjectNotFound naming the pool's queues."""
        pool = get_platform().work_pools.get(work_pool_name or DEFAULT_WORK_POOL)
        return WorkQueue.of(pool, pool.queue(name))


def deployments_matching(
    deployment_filter: DeploymentFilter | None,
    *,
    flow_filter: FlowFilter | None = None,
    work_pool_filter: WorkPoolFilter | None = None,
    work_queue_filter: WorkQueueFilter | None = None,
) -> list[Deployment]:
    """The stored deployments every filter matches, by name."""
    pools = None if work_pool_filter is None else {p.name for p in pools_matching(work_pool_filter)}
    return [
        deployment
        for deployment in get_platform().deployments.list()
        if (deployment_filter is None or deployment_filter.matches(deployment))
        and (flow_filter is None or flow_filter.matches(deployment))
        and (pools is None or deployment.work_pool in pools)
        and (
            work_queue_filter is None
            or work_queue_filter.matches_values({"name": deployment.work_queue})
        )
    ]


def pools_matching(work_pool_filter: WorkPoolFilter | None) -> list[WorkPoolSpec]:
    return [
        pool
        for pool in get_platform().work_pools.list()
        if work_pool_filter is None or work_pool_filter.matches(pool)
    ]


def _scheduled_time(state: State | None) -> datetime | None:
    if state is None:
        return None
    if state.type is not StateType.SCHEDULED:
        raise ValueError(
            f"A run of a deployment starts Scheduled; got {state.name!r} ({state.type}). "
            "Pass Scheduled(scheduled_time=...) or no state."
        )
    when = state.details.get("scheduled_time")
    if when is None or isinstance(when, datetime):
        return when
    return datetime.fromisoformat(str(when))
