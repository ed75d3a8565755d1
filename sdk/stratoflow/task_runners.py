"""Task runners run submitted task runs concurrently: threads (default) or processes."""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import functools
import multiprocessing
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from stratoflow.context import flow_run_context
from stratoflow.exceptions import MissingContextError
from stratoflow.futures import StratoFuture
from stratoflow.states import State

if TYPE_CHECKING:
    from stratoflow.context import FlowRunContext
    from stratoflow.tasks import Task


class TaskRunner(ABC):
    """Runs task runs submitted with `task.submit()` / `task.map()` in one flow run."""

    @abstractmethod
    def submit(
        self, task: Task[..., Any], parameters: dict[str, Any], *, wait_for: Iterable[Any] | None
    ) -> StratoFuture[Any]: ...

    @abstractmethod
    def duplicate(self) -> TaskRunner:
        """A fresh, unstarted runner with the same configuration (one per flow run)."""

    @abstractmethod
    def shutdown(self, wait: bool = True) -> None:
        """Release the runner's workers, waiting for running task runs when `wait`."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True)


def _current_flow(task: Task[..., Any]) -> FlowRunContext:
    flow_ctx = flow_run_context.get()
    if flow_ctx is None:
        raise MissingContextError(f"{task.name!r} was submitted outside a flow run.")
    return flow_ctx


class ThreadPoolTaskRunner(TaskRunner):
    """Runs task runs in a pool of threads (the default).

    `max_workers` defaults to STRATOFLOW_THREAD_POOL_MAX_WORKERS, else min(32, cpus + 4).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"ThreadPoolTaskRunner(max_workers={max_workers}) needs at least 1")
        self.max_workers = max_workers
        self._executor: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> cf.ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._executor is None:
                    from stratoflow.settings import get_settings

                    workers = self.max_workers or get_settings().thread_pool_max_workers
                    self._executor = cf.ThreadPoolExecutor(
                        max_workers=workers, thread_name_prefix="stratoflow-task"
                    )
                executor = self._executor
        return executor

    def submit(
        self, task: Task[..., Any], parameters: dict[str, Any], *, wait_for: Iterable[Any] | None
    ) -> StratoFuture[Any]:
        from stratoflow.engine.task_calls import create_task_run, run_task_run

        flow_ctx = _current_flow(task)
        services = flow_ctx.services
        task_run = create_task_run(task, flow_ctx, parameters, services)
        context = contextvars.copy_context()
        inner: cf.Future[State] = self._pool().submit(
            context.run, run_task_run, task, task_run, parameters, wait_for, flow_ctx, services
        )
        return StratoFuture(task_run, inner)

    def duplicate(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(self.max_workers)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its configuration (a flow's options travel to worker processes).
        return (ThreadPoolTaskRunner, (self.max_workers,))

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait)

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"


class ProcessPoolTaskRunner(TaskRunner):
    """Runs each task run in a worker process, for CPU-bound work.

    Arguments are resolved in the flow's process (upstream futures are waited on there),
    then the task, its arguments and results travel with cloudpickle. Results, logs and
    state changes come back to the flow's backend. The result and cache stores must be
    reachable from the workers (the default local stores are).

    `initializer(*initargs)` runs once in each worker process before its first task run
    (as Prefect's, and `ProcessPoolExecutor`'s): it must be picklable.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: str = "spawn",
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"ProcessPoolTaskRunner(max_workers={max_workers}) needs at least 1")
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable, got {initializer!r}")
        self.max_workers = max_workers
        self.mp_context = mp_context
        self.initializer = initializer
        self.initargs = tuple(initargs)
        self._processes: cf.ProcessPoolExecutor | None = None
        self._dispatchers: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pools(self) -> tuple[cf.ProcessPoolExecutor, cf.ThreadPoolExecutor]:
        with self._lock:
            if self._processes is None or self._dispatchers is None:
                workers = self.max_workers or multiprocessing.cpu_count()
                self._processes = cf.ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context(self.mp_context),
                    initializer=self.initializer,
                    initargs=self.initargs,
                )
                # One dispatcher thread per process keeps every process busy while
                # dispatchers wait on upstream futures.
                self._dispatchers = cf.ThreadPoolExecutor(
                    max_workers=workers, thread_name_prefix="stratoflow-dispatch"
                )
            return self._processes, self._dispatchers

    def submit(
        self, task: Task[..., Any], parameters: dict[str, Any], *, wait_for: Iterable[Any] | None
    ) -> StratoFuture[Any]:
        from stratoflow.engine.remote import dispatch_to_process
        from stratoflow.engine.task_calls import create_task_run

        flow_ctx = _current_flow(task)
        task_run = create_task_run(task, flow_ctx, parameters, flow_ctx.services)
        processes, dispatchers = self._pools()
        context = contextvars.copy_context()
        inner: cf.Future[State] = dispatchers.submit(
            context.run,
            dispatch_to_process,
            processes,
            task,
            task_run,
            parameters,
            wait_for,
            flow_ctx,
        )
        return StratoFuture(task_run, inner)

    def duplicate(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(
            self.max_workers, self.mp_context, initializer=self.initializer, initargs=self.initargs
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its configuration: the flow's options travel to the workers.
        return (
            functools.partial(
                ProcessPoolTaskRunner, initializer=self.initializer, initargs=self.initargs
            ),
            (self.max_workers, self.mp_context),
        )

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            processes, self._processes = self._processes, None
            dispatchers, self._dispatchers = self._dispatchers, None
        if dispatchers is not None:
            dispatchers.shutdown(wait=wait)
        if processes is not None:
            processes.shutdown(wait=wait)

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"
