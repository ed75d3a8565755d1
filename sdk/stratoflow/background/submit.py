"""`my_task.delay(...)` / `my_task.apply_async(...)`: create a Scheduled task run and hand
it to a task worker.

With the AWS backend (and the emulator), the run, its parameters and a message on the
task queue are written here (stratoflow.background.aws) and a task worker runs it. With
the in-process memory backend there is no queue to send to and no other process could
read the run, so the run is run in a background thread of this process (a pool shared by
the process; the interpreter waits for it at exit), through the same task engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from stratoflow._tags import current_tags, merge_tags
from stratoflow.backends.memory import MemoryBackend
from stratoflow.background.admission import upstream_problem
from stratoflow.background.futures import BackgroundTaskFuture
from stratoflow.context import Services, get_services
from stratoflow.engine.task_calls import run_task_run
from stratoflow.exceptions import (
    ConflictError,
    InvalidTransitionError,
    OptionError,
    TaskRunStopped,
)
from stratoflow.models import TaskRun
from stratoflow.states import NotReady, Pending, Scheduled

if TYPE_CHECKING:
    from stratoflow.tasks import Task

LOCAL_THREADS = 8
_local_pool: ThreadPoolExecutor | None = None


def apply_async(
    task: Task[..., Any],
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    wait_for: Iterable[Any] | None = None,
) -> BackgroundTaskFuture[Any]:
    """Create a background run of `task` with these arguments; see the module doc."""
    parameters = task.bind(tuple(args or ()), dict(kwargs or {}))
    upstream = _upstream_ids(task, wait_for)
    services = get_services()
    task_run = new_task_run(task, services)
    if isinstance(services.backend, MemoryBackend):
        return _run_in_thread(task, task_run, parameters, upstream, services)
    # The AWS submitter is imported here, not at the top: `import stratoflow` does not
    # load boto3 (the same reason as stratoflow.context.default_services).
    from stratoflow.background.aws import submit_to_queue

    return submit_to_queue(task, task_run, parameters, upstream, services)


def new_task_run(task: Task[..., Any], services: Services) -> TaskRun:
    """A Scheduled task run outside any flow (`TASKRUN#<id>`), not yet stored."""
    run_id = str(uuid.uuid4())
    extra_tags = current_tags()
    return TaskRun(
        id=run_id,
        name=f"{task.name}-{run_id[:8]}",
        task_key=task.task_key,
        dynamic_key=run_id,
        task_name=task.name,
        task_version=task.options.version,
        tags=merge_tags(task.options.tags, extra_tags) if extra_tags else task.options.tags,
        created=services.clock.now(),
        state=Scheduled("Waiting for a task worker."),
        version=1,
    )


def _upstream_ids(task: Task[..., Any], wait_for: Iterable[Any] | None) -> tuple[str, ...]:
    ids = []
    for item in wait_for or ():
        if not isinstance(item, BackgroundTaskFuture):
            raise OptionError(
                f"{task.name}.apply_async(wait_for=...) takes the futures of other background "
                f"task runs (what .delay() returns), not {type(item).__name__}."
            )
        ids.append(item.task_run_id)
    return tuple(ids)


def _run_in_thread(
    task: Task[..., Any],
    task_run: TaskRun,
    parameters: dict[str, Any],
    upstream: tuple[str, ...],
    services: Services,
) -> BackgroundTaskFuture[Any]:
    global _local_pool
    services.backend.create_task_run(task_run)
    if _local_pool is None:
        _local_pool = ThreadPoolExecutor(LOCAL_THREADS, thread_name_prefix="stratoflow-background")
    future: BackgroundTaskFuture[Any] = BackgroundTaskFuture(task_run.id, services)
    waits: list[BackgroundTaskFuture[Any]] = [
        BackgroundTaskFuture(run_id, services) for run_id in upstream
    ]

    def run() -> None:
        for upstream_future in waits:
            upstream_future.wait()
        backend = services.backend
        try:  # claimed as a task worker claims it: a run cancelled meanwhile is not run
            backend.set_task_run_state(
                task_run.id, Pending("Claimed by this process."), expected_version=task_run.version
            )
        except (ConflictError, InvalidTransitionError):
            return
        task_run.heartbeat = services.clock.now()  # held: a cancellation is now Cancelling
        try:
            _, failure = upstream_problem(backend, upstream)
            if failure is not None:
                backend.set_task_run_state(task_run.id, NotReady(failure))
                return
            run_task_run(task, task_run, parameters, None, None, services)
        except TaskRunStopped:
            return  # cancelled while it ran: the run is Cancelled

    _local_pool.submit(run)
    return future
