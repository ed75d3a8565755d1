"""Reading and steering runs in the current backend (the local one by default)."""

from __future__ import annotations

from typing import Any

from stratoflow.context import get_services
from stratoflow.exceptions import ObjectNotFound
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.states import State


def read_flow_run(flow_run_id: str) -> FlowRun:
    return get_services().backend.read_flow_run(flow_run_id)


def read_flow_runs(limit: int | None = None) -> list[FlowRun]:
    """Newest first."""
    return get_services().backend.list_flow_runs(limit=limit)


def read_task_runs(flow_run_id: str) -> list[TaskRun]:
    return get_services().backend.list_task_runs(flow_run_id)


def read_logs(flow_run_id: str, *, task_run_id: str | None = None) -> list[LogEntry]:
    return get_services().backend.read_logs(flow_run_id, task_run_id=task_run_id)


def cancel_flow_run(flow_run_id: str) -> State:
    """Request cancellation: the run becomes Cancelling, then Cancelled at its next task."""
    from stratoflow.engine.flow_engine import request_cancellation

    return request_cancellation(flow_run_id, get_services())


def read_result(run: FlowRun | TaskRun) -> Any:
    """The result of a finished run, from memory or from its persisted record."""
    if run.state is None:
        raise ObjectNotFound(f"Run {run.id} has no state yet.")
    if not run.state.has_data and run.state.result_record is None and run.result_record:
        return run.result_record.load()
    return run.state.result()
