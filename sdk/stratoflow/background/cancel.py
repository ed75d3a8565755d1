"""Cancelling a background task run: `stratoflow.runs.cancel_task_run`, `strato task-run
cancel`.

Prefect's task worker does not watch for cancellation: a background run cancelled before
a worker takes it is never started (Prefect refuses Cancelled → Pending for background
runs), and one that is running finishes its attempt. stratoflow does the same, and makes
sure the run ends Cancelled, never Completed written over the cancellation:

- waiting for a worker (Scheduled, held by none): Cancelled at once. The worker that
  receives its message drops it (stratoflow.background.admission) and deletes it.
- held by a worker (Pending, Running, or AwaitingRetry between two attempts): Cancelling.
  The worker stops it at its next state write, which writes Cancelled instead: before the
  next attempt, or when the attempt it runs ends (an attempt is not interrupted; its
  outcome is discarded, its hooks do not run). If that worker died meanwhile, the crash
  sweep writes Cancelled once its lease ends (stratoflow.background.leases).
"""

from __future__ import annotations

from stratoflow.backends.base import Backend
from stratoflow.background.leases import is_held
from stratoflow.exceptions import ConflictError, InvalidTransitionError, OptionError
from stratoflow.states import Cancelled, Cancelling, State, StateType

CANCEL_ATTEMPTS = 5
"""Reads and conditional writes before giving up on a run that keeps changing (a worker
claiming it, renewing its lease)."""


def cancel_task_run(backend: Backend, task_run_id: str) -> State:
    """Cancel the background task run `task_run_id`; returns its new state (Cancelled, or
    Cancelling while a worker holds it). InvalidTransitionError for a final run,
    OptionError for a task run of a flow (cancel its flow run instead)."""
    for _ in range(CANCEL_ATTEMPTS):
        run = backend.read_task_run(task_run_id)
        version = run.version  # before the state: the memory backend hands out its record
        if run.flow_run_id is not None:
            raise OptionError(
                f"Task run {task_run_id} is a task run of flow run {run.flow_run_id}: cancel "
                f"the flow run (`strato flow-run cancel {run.flow_run_id}`), and its task runs "
                "stop with it. Only background task runs (`.delay()`) are cancelled alone."
            )
        state = run.state
        if state is None or state.is_final():
            name = state.name if state else None
            raise InvalidTransitionError(
                f"Task run {task_run_id} is already {name!r}: there is nothing to cancel."
            )
        if state.type is StateType.CANCELLING:
            return state
        if state.type is StateType.SCHEDULED and not is_held(run):
            proposed = Cancelled("Cancelled before a task worker started it.")
        else:
            proposed = Cancelling("Cancellation requested.")
        try:
            return backend.set_task_run_state(task_run_id, proposed, expected_version=version).state
        except ConflictError:
            continue  # claimed or renewed meanwhile: look again
    raise ConflictError(
        f"Task run {task_run_id} kept changing under {CANCEL_ATTEMPTS} attempts to cancel it; "
        "try again."
    )
