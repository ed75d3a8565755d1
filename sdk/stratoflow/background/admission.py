"""What a task worker does with a task queue message before it runs anything: refuse it
(malformed, a task it does not serve, a run whose stored task key is another's:
dead-lettered with the reason), drop it (final, cancelled before it started, held by a
live worker), settle it (held by a worker whose lease ended: stratoflow.background.leases),
wait (an upstream run of `wait_for` is not final yet), or go ahead and claim the run.

A message is untrusted input: anything that may send to the task queue could have sent
it, so only the stored run decides, and it is checked before anything is written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stratoflow.backends.base import Backend
from stratoflow.background.leases import is_held, lease_ended
from stratoflow.background.messages import TaskRunMessage, parse_task_message
from stratoflow.exceptions import ObjectNotFound
from stratoflow.models import TaskRun
from stratoflow.states import StateType
from stratoflow.workers.messages import MalformedMessage


@dataclass(frozen=True)
class Drop:
    """Nothing to run: delete the message."""

    reason: str


@dataclass(frozen=True)
class Refuse(Drop):
    """Never to be run by this worker: dead-letter with the reason, then delete. The run,
    if any, is left as it was."""


@dataclass(frozen=True)
class Ready:
    """A Scheduled run of a served task: claim it."""

    run: TaskRun
    message: TaskRunMessage


@dataclass(frozen=True)
class Abandoned:
    """A run held by a worker whose lease ended (its message came back after the worker
    died): settle it, and run it again when it has retries left."""

    run: TaskRun
    message: TaskRunMessage


Decision = Drop | Ready | Abandoned


def admit(backend: Backend, body: str, served: Mapping[str, Any], now: datetime) -> Decision:
    try:
        message = parse_task_message(body)
    except MalformedMessage as exc:
        return Refuse(f"malformed task run message: {exc}")
    if message.task_key not in served:
        return Refuse(
            f"task run {message.task_run_id} is of task {message.task_key!r}, which this task "
            f"worker does not serve (it serves {', '.join(sorted(served)) or 'nothing'}). "
            "Every task worker of an installation must serve every task sent to its task "
            "queue: start it with all of them (docs/background-tasks.md)."
        )
    try:
        run = backend.read_task_run(message.task_run_id)
    except ObjectNotFound:
        return Drop(f"task run {message.task_run_id} does not exist")
    if run.flow_run_id is not None or run.task_key != message.task_key:
        return Refuse(
            f"task run {run.id} is of task {run.task_key!r}"
            + (f" in flow run {run.flow_run_id}" if run.flow_run_id else "")
            + f", but its message names task {message.task_key!r}: a task worker runs only "
            "background runs of the task their message names. The run was left as it was; "
            "find out who sent this message."
        )
    state = run.state
    if state is None:
        return Drop(f"task run {run.id} has no state")
    if state.type is StateType.CANCELLED:
        return Drop(f"task run {run.id} was cancelled ({state.message}); it is not run")
    if state.is_final():
        return Drop(f"task run {run.id} is already {state.name!r} (a duplicate)")
    if lease_ended(run, now):
        return Abandoned(run, message)
    if is_held(run):
        return Drop(
            f"task run {run.id} is {state.name!r}, held by a live task worker (a duplicate)"
        )
    if state.type is not StateType.SCHEDULED:
        return Drop(f"task run {run.id} is {state.name!r}, not waiting for a worker")
    return Ready(run, message)


def upstream_problem(backend: Backend, upstream: tuple[str, ...]) -> tuple[bool, str | None]:
    """(ready?, failure): not ready while an upstream run is not final; a failure names
    the upstream run that did not complete."""
    for run_id in upstream:
        try:
            run = backend.read_task_run(run_id)
        except ObjectNotFound:
            return True, f"Upstream task run {run_id} does not exist, so this run did not start."
        if run.state is None or not run.state.is_final():
            return False, None
        if run.state.type is not StateType.COMPLETED:
            return True, (
                f"Upstream task run {run.name!r} ended in state {run.state.name!r}, so this "
                "task run did not start."
            )
    return True, None
