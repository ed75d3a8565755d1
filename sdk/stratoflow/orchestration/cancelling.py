"""A background task run that is Cancelling ends Cancelled, whatever its worker does next.

Prefect's `EnforceCancellingToCancelledTransition`: a run in Cancelling takes no state
but Cancelled. The transition table alone would let a worker that finishes the attempt
it was running write Completed over the cancellation; instead, whatever state a task
run's engine proposes for a Cancelling run becomes Cancelled, and the engine is stopped
(`TaskRunStopped`). Both backends apply it where they write a background run: the memory
backend on its records, the AWS backend on the runs its process holds
(`backends.aws.held_task_runs`).
"""

from __future__ import annotations

from stratoflow.models import TaskRun
from stratoflow.states import Cancelled, State, StateType


def cancelled_instead(run: TaskRun, proposed: State) -> State | None:
    """The Cancelled state to write instead of `proposed` when `run` is Cancelling and
    `proposed` is neither Cancelling nor Cancelled; None otherwise."""
    current = run.state
    if current is None or current.type is not StateType.CANCELLING:
        return None
    if proposed.type in (StateType.CANCELLING, StateType.CANCELLED):
        return None
    if proposed.is_final():
        message = (
            f"Cancelled: its attempt ended ({proposed.name}) after the cancellation was "
            "requested, and that outcome was discarded."
        )
    else:
        message = f"Cancelled before it went on ({proposed.name}): cancellation was requested."
    return Cancelled(message, task_run_id=run.id)


def stopped_message(run: TaskRun, state: State) -> str:
    """What a stopped run's engine is told (TaskRunStopped)."""
    if state.type is StateType.CANCELLED:
        return f"Task run {run.name!r} was cancelled; it stops here."
    return (
        f"Task run {run.name!r} was changed by someone else while this worker held it "
        f"(it is {state.name!r}); this worker stops running it."
    )
