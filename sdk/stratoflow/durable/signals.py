"""The signal a flow function raises to stop its attempt and wait without compute."""

from __future__ import annotations

from typing import Any

from stratoflow.context import FlowRunContext, task_run_context
from stratoflow.states import HandedBack, State


class Suspend(BaseException):
    """Stops this attempt of a deployed flow run: the engine waits for the task runs it
    submitted, records them, enters `state`, and (when `send_after` is not None) sends the
    run back to its work queue that many seconds later. A BaseException, so that the
    flow's own `except Exception` does not swallow it (as Prefect's Pause signal)."""

    def __init__(
        self, state: State, key: str | None, wait: dict[str, Any], send_after: float | None
    ) -> None:
        super().__init__(f"{state.name}: {state.message}")
        self.state = state
        self.key = key
        self.wait = wait
        self.send_after = send_after


def flow_body_context(what: str) -> FlowRunContext:
    """The flow run calling `what` from its own function (not from one of its tasks)."""
    if task_run_context.get() is not None:
        raise RuntimeError(f"{what} is called from a flow function, not from inside a task.")
    ctx = FlowRunContext.get()
    if ctx is None:
        raise RuntimeError(f"{what} is called from inside a flow run; there is none here.")
    return ctx


def can_suspend(ctx: FlowRunContext) -> bool:
    """Whether the run can stop and continue later in a new attempt: a deployment's run
    on a worker (which can send it back to its queue)."""
    return ctx.services.retry_handoff is not None and ctx.flow_run.deployment_name is not None


def hand_back_if_out_of_time(ctx: FlowRunContext, task_timeout: float | None) -> None:
    """At a task boundary of the flow function: stop the attempt and send the run back to
    its queue at once when the worker's time budget cannot fit the next task (a Lambda
    invocation's end). The next attempt replays what this one did."""
    time_left = ctx.services.time_left
    if time_left is None or not can_suspend(ctx):
        return
    needed = max(ctx.services.handback_seconds, task_timeout or 0.0)
    left = time_left()
    if left >= needed:
        return
    state = HandedBack(
        f"Handed back with {left:.0f} s left in the worker's time budget (under "
        f"{needed:.0f} s); the next attempt continues where this one stopped."
    )
    raise Suspend(state, None, {}, send_after=0.0)
