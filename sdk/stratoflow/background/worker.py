"""A task worker: serves a fixed set of tasks (by task key), takes their runs' messages
from the task queue, claims each run (Scheduled → Pending, conditional on the version
read, so a duplicate delivery runs once) and runs it with the task engine."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any

from stratoflow.backends.aws.backend import AwsBackend
from stratoflow.background.admission import Drop, Ready, Refuse, admit, upstream_problem
from stratoflow.background.parameters import decode_parameters
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
)
from stratoflow.models import TaskRun
from stratoflow.resources import TASKS_SIGNING_DOMAIN
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
        self, tasks: Iterable[Task[..., Any]], services: Services, queue: TaskQueue, *, name: str
    ) -> None:
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
        self.tasks = served
        self.backend = backend
        self.services = services
        self.queue = queue
        self.name = name
        self.parameters = TaskRunParameters(backend.dynamodb, backend.table)

    def handle(self, body: str, *, on_claimed: Callable[[], None] | None = None) -> State | None:
        """Process one message's body: the run's final state, or None when there was
        nothing to run (refused: dead-lettered; stale: dropped; waiting: sent again)."""
        decision = admit(self.backend, body, self.tasks)
        if isinstance(decision, Refuse):
            logger.warning("Refusing a task queue message: %s", decision.reason)
            self.queue.dead_letter(body, decision.reason)
            return None
        if isinstance(decision, Drop):
            logger.info("Nothing to do: %s", decision.reason)
            return None
        return self._run(decision, on_claimed)

    def _run(self, ready: Ready, on_claimed: Callable[[], None] | None) -> State | None:
        run_id = ready.run.id
        try:
            stored = self.parameters.read(run_id)
        except (ObjectNotFound, ResultRefused) as exc:
            return self._fail_unclaimed(ready.run, f"Its parameters could not be read: {exc}")
        is_ready, failure = upstream_problem(self.backend, stored.wait_for)
        if not is_ready:
            self.queue.send(ready.message, delay_seconds=UPSTREAM_WAIT_SECONDS)
            return None
        claimed = self._claim(ready.run)
        if claimed is None:
            return None
        if on_claimed is not None:
            on_claimed()  # a copy delivered later finds the run claimed and is dropped
        if failure is not None:
            return self._finish(claimed, NotReady(failure))
        try:
            parameters = decode_parameters(
                stored, task_run_id=run_id, verifier=self.backend.results.verifier
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
        self.backend.create_task_run(claimed)  # this process runs it: its writes go behind
        with use_services(services):
            state = run_task_run(task, claimed, parameters, None, None, services)
        self.backend.flush()
        return state

    def _claim(self, run: TaskRun) -> TaskRun | None:
        try:
            self.backend.set_task_run_state(
                run.id,
                Pending(f"Claimed by {self.name}.", worker=self.name),
                expected_version=run.version,
            )
        except (ConflictError, InvalidTransitionError):
            logger.info("Task run %s was claimed by another worker", run.id)
            return None
        return self.backend.read_task_run(run.id)

    def _finish(self, run: TaskRun, state: State) -> State:
        logger.error("Task run %s: %s", run.id, state.message)
        return self.backend.set_task_run_state(run.id, state).state

    def _fail_unclaimed(self, run: TaskRun, message: str) -> State | None:
        claimed = self._claim(run)
        return None if claimed is None else self._finish(claimed, Failed(message))
