"""Replay of subflows: a later attempt of a flow run reuses the subflow runs its earlier
attempts completed, and continues those they did not.

A subflow call takes a position among the calls of its scope, as a task call does
(`stratoflow.engine.replay`), and its run id is derived from the parent run's id and
that position: the same call in every attempt of the parent gets the same subflow run.
In a later attempt (the parent's context has a replay history), that run is read: a
Completed one with a readable result is given back without running; an unfinished or
failed one runs again as its next attempt, replaying its own completed task runs.
"""

from __future__ import annotations

import logging

from stratoflow.context import FlowRunContext, task_run_context
from stratoflow.engine.replay import FLOW_SCOPE, CallPosition
from stratoflow.exceptions import ObjectNotFound
from stratoflow.models import FlowRun
from stratoflow.run_ids import subflow_run_id
from stratoflow.states import State, StateType

logger = logging.getLogger("stratoflow.replay")


def subflow_position(parent: FlowRunContext, flow_name: str) -> CallPosition:
    caller = task_run_context.get()
    scope = FLOW_SCOPE
    if caller is not None and caller.task_run.replay_key is not None:
        scope = caller.task_run.replay_key
    return parent.positions.next(scope, f"flow:{flow_name}")


def subflow_id(parent: FlowRunContext, position: CallPosition) -> str:
    return subflow_run_id(parent.flow_run.id, call_key=position.key)


def recorded_subflow(parent: FlowRunContext, run_id: str) -> FlowRun | None:
    """The subflow run an earlier attempt of the parent made for this call, if any."""
    if parent.replay is None:
        return None
    try:
        return parent.services.backend.read_flow_run(run_id)
    except ObjectNotFound:
        return None


def replayed_state(run: FlowRun) -> State | None:
    """The run's Completed state with its result read back, or None when it must run."""
    state = run.state
    if state is None or state.type is not StateType.COMPLETED or run.result_record is None:
        return None
    try:
        value = state.result()
    except Exception as exc:  # noqa: BLE001 - an unreadable result: the subflow runs again
        logger.warning(
            "Subflow run %r completed but its result cannot be read back (%s: %s); "
            "running it again.",
            run.name,
            type(exc).__name__,
            exc,
        )
        return None
    return state.copy(data=value, has_data=True)
