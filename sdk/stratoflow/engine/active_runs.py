"""Flow runs executing in this process, so that a cancellation request reaches them."""

from __future__ import annotations

import threading

from stratoflow.context import FlowRunContext, Services
from stratoflow.states import Cancelling, State

_active_runs: dict[str, FlowRunContext] = {}
_active_lock = threading.Lock()


def register_active_run(ctx: FlowRunContext) -> None:
    with _active_lock:
        _active_runs[ctx.flow_run.id] = ctx


def unregister_active_run(flow_run_id: str) -> None:
    with _active_lock:
        _active_runs.pop(flow_run_id, None)


def signal_cancellation(flow_run_id: str) -> bool:
    """Tell a run executing in this process to stop at its next task boundary (its state
    is already Cancelling). Returns whether such a run was found."""
    with _active_lock:
        ctx = _active_runs.get(flow_run_id)
    if ctx is None:
        return False
    ctx.cancel_requested.set()
    return True


def request_cancellation(flow_run_id: str, services: Services) -> State:
    """Move a flow run to Cancelling; a run executing in this process stops at its next
    task boundary and ends Cancelled."""
    cancelling = Cancelling("Cancellation requested.")
    cancelling.timestamp = services.clock.now()  # the grace period runs on the same clock
    result = services.backend.set_flow_run_state(flow_run_id, cancelling)
    with _active_lock:
        ctx = _active_runs.get(flow_run_id)
    if ctx is not None:
        ctx.cancel_requested.set()
    return result.state
