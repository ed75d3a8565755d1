"""The future `my_task.delay(...)` returns (Prefect's PrefectDistributedFuture): it reads
the task run through the backend, wherever the run runs."""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

from stratoflow.context import Services
from stratoflow.models import TaskRun
from stratoflow.runs import read_result
from stratoflow.states import Pending, State, StateType

R = TypeVar("R")

FIRST_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 2.0


class BackgroundTaskFuture(Generic[R]):
    """A background task run: `.task_run_id`, `.state`, `.wait()`, `.result()`."""

    __slots__ = ("_services", "task_run_id")

    def __init__(self, task_run_id: str, services: Services) -> None:
        self.task_run_id = task_run_id
        self._services = services

    def _read(self) -> TaskRun:
        return self._services.backend.read_task_run(self.task_run_id)

    @property
    def task_run(self) -> TaskRun:
        return self._read()

    @property
    def state(self) -> State:
        """The run's current state, read through the backend."""
        return self._read().state or Pending()

    def done(self) -> bool:
        return self.state.is_final()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run is final, or until `timeout` seconds have passed."""
        self._final_run(timeout)

    def _final_run(self, timeout: float | None) -> TaskRun | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = FIRST_POLL_SECONDS
        while True:
            run = self._read()
            if run.state is not None and run.state.is_final():
                return run
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                pause = min(pause, left)
            time.sleep(pause)
            pause = min(pause * 2, MAX_POLL_SECONDS)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value, waiting for it; raises the task's exception when it
        failed (or returns it with `raise_on_failure=False`), TimeoutError when the run
        is not final within `timeout` seconds."""
        run = self._final_run(timeout)
        if run is None:
            raise TimeoutError(
                f"Task run {self.task_run_id} was not final within {timeout} s (it is "
                f"{self.state.name!r}). Is a task worker serving it? Start one with "
                "`strato task-worker start <module:task>` (docs/background-tasks.md)."
            )
        assert run.state is not None
        if run.state.type is StateType.COMPLETED:
            value: Any = read_result(run)
            return value  # type: ignore[no-any-return]
        return run.state.result(raise_on_failure=raise_on_failure)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"BackgroundTaskFuture(task_run_id={self.task_run_id!r})"
