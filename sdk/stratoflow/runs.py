"""Reading and steering runs in the current backend (the local one by default)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from stratoflow.background.cancel import cancel_task_run as _cancel_task_run
from stratoflow.context import get_services
from stratoflow.exceptions import ObjectNotFound
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.states import State, StateType


def read_flow_run(flow_run_id: str) -> FlowRun:
    return get_services().backend.read_flow_run(flow_run_id)


def read_flow_runs(limit: int | None = None) -> list[FlowRun]:
    """Newest first."""
    return get_services().backend.list_flow_runs(limit=limit)


def read_upcoming_flow_runs(*, after: datetime, limit: int = 10) -> list[FlowRun]:
    """Scheduled runs due at or after `after`, soonest first (the dashboard's and the
    deployments page's "next runs")."""
    return get_services().backend.list_flow_runs_by_state(
        StateType.SCHEDULED, since=after, limit=limit
    )


def read_task_runs(flow_run_id: str) -> list[TaskRun]:
    return get_services().backend.list_task_runs(flow_run_id)


def read_logs(
    flow_run_id: str, *, task_run_id: str | None = None, since: datetime | None = None
) -> list[LogEntry]:
    """A run's log lines, oldest first; with `since`, only those at or after it (what a
    live tail asks for: CloudWatch reads from that time on)."""
    return get_services().backend.read_logs(flow_run_id, task_run_id=task_run_id, since=since)


def cancel_flow_run(flow_run_id: str) -> State:
    """Request cancellation: the run becomes Cancelling, then Cancelled at its next task."""
    from stratoflow.engine.flow_engine import request_cancellation

    return request_cancellation(flow_run_id, get_services())


def cancel_task_run(task_run_id: str) -> State:
    """Cancel a background task run (what `my_task.delay()` made): Cancelled at once while
    it waits for a task worker, else Cancelling until its worker stops it, then Cancelled
    (docs/background-tasks.md#cancellation)."""
    return _cancel_task_run(get_services().backend, task_run_id)


def read_result(run: FlowRun | TaskRun) -> Any:
    """The result of a finished run, from memory or from its persisted record."""
    if run.state is None:
        raise ObjectNotFound(f"Run {run.id} has no state yet.")
    if not run.state.has_data and run.state.result_record is None and run.result_record:
        return run.result_record.load()
    return run.state.result()


def query_flow_runs(
    *,
    state: str | None = None,
    deployment: str | None = None,
    since: datetime | None = None,
    limit: int | None = 50,
    where: Callable[[FlowRun], bool] | None = None,
) -> list[FlowRun]:
    """Flow runs newest first, filtered by state (type or name, any case), deployment and
    creation time; uses the index that fits the filter. `where` is any further test a run
    must pass (the client's Prefect-style filters); `limit=None` returns every match."""
    backend = get_services().backend
    wanted_type = _state_type(state)
    if deployment is None and wanted_type is None:
        # By creation time: the backend reads from `since` on and stops at `limit`.
        return backend.list_flow_runs(
            limit=limit,
            since=since,
            where=lambda run: (
                (state is None or _state_matches(run, state)) and (where is None or where(run))
            ),
        )
    if deployment is not None:
        candidates = backend.list_flow_runs_of_deployment(deployment)
    else:
        assert wanted_type is not None
        candidates = list(reversed(backend.list_flow_runs_by_state(wanted_type)))
    chosen = []
    for run in candidates:
        if state is not None and not _state_matches(run, state):
            continue
        if since is not None and run.created is not None and run.created < since:
            continue
        if where is not None and not where(run):
            continue
        chosen.append(run)
        if limit is not None and len(chosen) >= limit:
            break
    return chosen


def _state_type(state: str | None) -> StateType | None:
    if state is None:
        return None
    try:
        return StateType(state.upper())
    except ValueError:
        return None


def _state_matches(run: FlowRun, state: str) -> bool:
    if run.state is None:
        return False
    return state.upper() in (run.state.type.value, run.state.name.upper())
