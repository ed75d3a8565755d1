"""A task worker: serves a fixed set of tasks (by task key), takes their runs' messages
from the task queue, claims each run (Scheduled → Pending, conditional on the version
read, so a duplicate delivery runs once) and runs it with the task engine, holding a
lease on it meanwhile (stratoflow.background.leases). A run whose message comes back
after its worker died is settled here (Crashed, and retried if it has retries left); a
run cancelled while held stops at its next state write and ends Cancelled."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any

from stratoflow.backends.aws.backend import AwsBackend
from stratoflow.backends.aws.held_task_runs import write_states
from stratoflow.background.admission import Abandoned, Drop, Refuse, admit, upstream_problem
from stratoflow.background.leases import Lease, crash_states
from stratoflow.background.messages import TaskRunMessage
from stratoflow.background.parameters import StoredParameters, decode_parameters
from stratoflow.background.queue import TaskQueue
from stratoflow.background.store import TaskRunParameters
from stratoflow.context import Services, use_services
from stratoflow.engine.task_calls import run_task_run
from stratoflow.exceptions import (
    ConflictError,
    InvalidTransitionError,
    ObjectNotFound,
    OptionError,
    ResultRefused,
    TaskRunStopped,
)
from stratoflow.models import TaskRun
from stratoflow.resources import TASKS_SIGNING_DOMAIN
from stratoflow.settings import get_settings
from stratoflow.states import Failed, NotReady, Pending, State
from stratoflow.tasks import Task

logger = logging.getLogger("stratoflow.task_worker")

NEEDS_AWS = (
    "A task worker takes runs from the task queue, which needs the AWS backend: set "
    "STRATOFLOW_BACKEND=aws (and STRATOFLOW_ENDPOINT_URL for the emulator of `strato dev`). "
    "With the memory backend .delay() runs tasks in the calling process."
)
UPSTREAM_WAIT_SECONDS = 5
"""A run whose `wait_for` runs are not final yet comes back this much later."""


class TaskWorker:
    def __init__(
        self,
        tasks: Iterable[Task[..., Any]],
        services: Services,
        queue: TaskQueue,
        *,
        name: str,
        heartbeat_seconds: float | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        """`heartbeat_seconds` and `lease_seconds` (how long a run is held without a
        heartbeat before it counts as abandoned) default to the settings
        `heartbeat_seconds` and `zombie_after_seconds`."""
        served: dict[str, Task[..., Any]] = {}
        for task in tasks:
            if not isinstance(task, Task):
                raise OptionError(
                    f"A task worker serves tasks (functions decorated with @task), not "
                    f"{type(task).__name__}."
                )
            other = served.setdefault(task.task_key, task)
            if other is not task and other.fn is not task.fn:
                raise OptionError(f"Two served tasks have the task key {task.task_key!r}.")
        if not served:
            raise OptionError("A task worker needs at least one task to serve.")
        backend = services.backend
        if not isinstance(backend, AwsBackend):
            raise OptionError(NEEDS_AWS)
        settings = get_settings()
        self.tasks = served
        self.backend = backend
        self.held = backend.held
        self.services = services
        self.queue = queue
        self.name = name
        self.parameters = TaskRunParameters(backend.dynamodb, backend.table)
        self.heartbeat_seconds = heartbeat_seconds or settings.heartbeat_seconds
        self.lease_seconds = lease_seconds or settings.zombie_after_seconds

    def handle(self, body: str, *, on_claimed: Callable[[], None] | None = None) -> State | None:
        """Process one message's body: the run's final state, or None when there was
        nothing to run (refused: dead-lettered; stale: dropped; waiting: sent again)."""
        decision = admit(self.backend, body, self.tasks, self.services.clock.now())
        if isinstance(decision, Refuse):
            logger.warning("Refusing a task queue message: %s", decision.reason)
            self.queue.dead_letter(body, decision.reason)
            return None
        if isinstance(decision, Drop):
            logger.info("Nothing to do: %s", decision.reason)
            return None
        if isinstance(decision, Abandoned):
            return self._settle(decision, on_claimed)
        return self._run(decision.run, decision.message, [self._pending()], on_claimed)

    def _pending(self) -> State:
        return Pending(f"Claimed by {self.name}.", worker=self.name)

    def _settle(self, abandoned: Abandoned, on_claimed: Callable[[], None] | None) -> State | None:
        """A run whose worker died, found by its message coming back: Cancelled if it was
        Cancelling; with retries left, Crashed then retried here (claimed in the same
        write); otherwise Crashed."""
        run = abandoned.run
        states, retry = crash_states(run, "a task worker that received its message again")
        if retry:
            logger.warning(
                "Task run %s was abandoned by its worker: %s retries it", run.id, self.name
            )
            states.append(self._pending())
            return self._run(run, abandoned.message, states, on_claimed, force=True)
        try:
            write_states(
                self.backend.dynamodb,
                self.backend.table,
                run,
                states,
                heartbeat=run.heartbeat,
                sweep_due=None,
            )
        except (ConflictError, InvalidTransitionError):
            logger.info("Task run %s changed while it was being settled", run.id)
            return None
        assert run.state is not None
        logger.warning("Task run %s was abandoned by its worker: %s", run.id, run.state.name)
        return run.state

    def _run(
        self,
        run: TaskRun,
        message: TaskRunMessage,
        states: list[State],
        on_claimed: Callable[[], None] | None,
        *,
        force: bool = False,
    ) -> State | None:
        run_id = run.id
        try:
            stored = self.parameters.read(run_id)
        except (ObjectNotFound, ResultRefused) as exc:
            return self._fail_unclaimed(
                run, states, f"Its parameters could not be read: {exc}", force=force
            )
        is_ready, failure = upstream_problem(self.backend, stored.wait_for)
        if not is_ready:
            self.queue.send(message, delay_seconds=UPSTREAM_WAIT_SECONDS)
            return None
        claimed = self._claim(run, states, force=force)
        if claimed is None:
            return None
        if on_claimed is not None:
            on_claimed()  # a copy delivered later finds the run held and is dropped
        try:
            with Lease(
                self.held,
                run_id,
                self.services.clock,
                interval=self.heartbeat_seconds,
                lease_seconds=self.lease_seconds,
            ):
                return self._execute(claimed, stored, failure)
        except TaskRunStopped as stopped:
            logger.info("Task run %s stopped: %s", run_id, stopped)
            return stopped.state
        finally:
            self.held.release(run_id)
            self.backend.flush()

    def _execute(self, claimed: TaskRun, stored: StoredParameters, failure: str | None) -> State:
        if failure is not None:
            return self._finish(claimed, NotReady(failure))
        try:
            parameters = decode_parameters(
                stored, task_run_id=claimed.id, verifier=self.backend.results.verifier
            )
        except ResultRefused as exc:
            return self._finish(claimed, Failed(f"Its parameters were refused: {exc}"))
        task = self.tasks[claimed.task_key]
        signer = self.services.result_signer
        services = dataclasses.replace(
            self.services,
            result_signer=signer.for_domain(TASKS_SIGNING_DOMAIN) if signer else None,
            pickle_results=self.services.pickle_results,
        )
        with use_services(services):
            return run_task_run(task, claimed, parameters, None, None, services)

    def _claim(self, run: TaskRun, states: list[State], *, force: bool) -> TaskRun | None:
        """Hold the run (conditional on the version and heartbeat read), with its lease
        started; None when another worker got it first or it changed meanwhile."""
        task = self.tasks[run.task_key]
        try:
            return self.held.claim(
                run,
                states,
                now=self.services.clock.now(),
                lease_seconds=self.lease_seconds,
                retries=task.options.retries,
                force=force,  # a crashed run going on to its retry
            )
        except (ConflictError, InvalidTransitionError):
            logger.info("Task run %s was claimed by another worker", run.id)
            return None

    def _finish(self, run: TaskRun, state: State) -> State:
        logger.error("Task run %s: %s", run.id, state.message)
        return self.backend.set_task_run_state(run.id, state).state

    def _fail_unclaimed(
        self, run: TaskRun, states: list[State], message: str, *, force: bool
    ) -> State | None:
        claimed = self._claim(run, states, force=force)
        if claimed is None:
            return None
        try:
            return self._finish(claimed, Failed(message))
        except TaskRunStopped as stopped:
            return stopped.state
        finally:
            self.held.release(run.id)
