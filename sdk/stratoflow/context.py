"""Run contexts and engine services, carried in context variables.

Context variables follow a task into the thread pool (the task runner copies the
context at submit time), so `get_run_logger()` and `stratoflow.runtime` work anywhere
inside a run.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stratoflow.backends.memory import MemoryBackend
from stratoflow.cache import LocalFileCacheStore
from stratoflow.clock import SystemClock
from stratoflow.engine.replay import CallPositions
from stratoflow.exceptions import MissingContextError
from stratoflow.results import LocalFileSystemResultStore
from stratoflow.settings import get_settings

if TYPE_CHECKING:
    from stratoflow.backends.base import Backend
    from stratoflow.cache import CacheStore
    from stratoflow.clock import Clock
    from stratoflow.concurrency.store import ConcurrencyStore
    from stratoflow.engine.replay import ReplayHistory
    from stratoflow.flows import Flow
    from stratoflow.models import FlowRun, TaskRun
    from stratoflow.result_signing import ResultSigner
    from stratoflow.results import ResultStore
    from stratoflow.task_runners import TaskRunner
    from stratoflow.tasks import Task


def _memory_concurrency_store() -> ConcurrencyStore:
    from stratoflow.concurrency.store import MemoryConcurrencyStore  # it imports this module

    return MemoryConcurrencyStore()


@dataclass
class Services:
    """What the engine talks to. Swap them (see `stratoflow.testing`) to test flows."""

    backend: Backend
    clock: Clock
    result_store: ResultStore
    cache_store: CacheStore
    rng: Callable[[], float] = random.random
    persist_results_by_default: bool = False
    """True for shared backends, so that any client can read any finished run's result."""
    retry_handoff: Callable[[FlowRun, float], bool] | None = None
    """Deployed runs: re-enqueue a failed run for its retry instead of sleeping here."""
    inline_result_max_bytes: int = 0
    """Results up to this size live in the run's record instead of the result store."""
    concurrency: ConcurrencyStore = field(default_factory=_memory_concurrency_store)
    """Concurrency limits and their leases (`stratoflow.concurrency`)."""
    pickle_results: bool = True
    """May 'auto' fall back to cloudpickle? Opt-in for shared stores (docs/security.md)."""
    result_signer: ResultSigner | None = None
    """Signs pickled results written to a shared store (`stratoflow.result_signing`)."""
    time_left: Callable[[], float] | None = None
    """Seconds left in the worker's time budget (a Lambda invocation's): a deployed run
    hands itself back at a task boundary before it runs out (stratoflow.durable)."""
    handback_seconds: float = 60.0
    """Hand back when less than this (or the next task's timeout) is left."""


_services_override: ContextVar[Services | None] = ContextVar("stratoflow_services", default=None)
_process_services: Services | None = None
_process_services_lock = threading.Lock()


def default_services() -> Services:
    """Services from the settings: the AWS backend when STRATOFLOW_BACKEND=aws."""
    settings = get_settings()
    if settings.backend == "aws":
        from stratoflow.backends.aws import build_aws_services

        return build_aws_services(settings)
    return Services(
        backend=MemoryBackend(),
        clock=SystemClock(),
        result_store=LocalFileSystemResultStore(settings.storage_path),
        cache_store=LocalFileCacheStore(settings.cache_path),
    )


def get_services() -> Services:
    services = _services_override.get()
    if services is not None:
        return services
    global _process_services
    if _process_services is None:
        with _process_services_lock:
            if _process_services is None:
                _process_services = default_services()
    return _process_services


def set_process_services(services: Services | None) -> Services | None:
    """Replace the process-wide services (all threads); returns the previous ones."""
    global _process_services
    with _process_services_lock:
        previous, _process_services = _process_services, services
    return previous


@contextlib.contextmanager
def use_services(services: Services) -> Iterator[Services]:
    """Use `services` in this context (and in tasks it submits)."""
    token = _services_override.set(services)
    try:
        yield services
    finally:
        _services_override.reset(token)


@dataclass
class FlowRunContext:
    flow: Flow[..., Any]
    flow_run: FlowRun
    parameters: dict[str, Any]
    task_runner: TaskRunner
    services: Services
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    positions: CallPositions = field(default_factory=CallPositions)
    """Where each task call of this attempt sits (its replay key)."""
    replay: ReplayHistory | None = None
    """Task runs earlier attempts completed, when this attempt replays them."""
    _counters: dict[str, Iterator[int]] = field(default_factory=dict)
    _counters_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The current flow run's context (also inside its task runs), or None outside a
        flow run (as Prefect's)."""
        found = flow_run_context.get()
        if found is None:
            task_ctx = task_run_context.get()
            found = task_ctx.flow_run_context if task_ctx is not None else None
        return found

    def next_dynamic_key(self, task_key: str) -> int:
        counter = self._counters.get(task_key)
        if counter is None:
            with self._counters_lock:
                counter = self._counters.setdefault(task_key, itertools.count())
        return next(counter)

    def next_wait_key(self, kind: str) -> str:
        """`pause-0`, `sleep-1`, ...: the key of this attempt's next durable wait of a kind,
        the same in every attempt (as Prefect's pause keys)."""
        return f"{kind}-{self.next_dynamic_key(f'__{kind}__')}"


@dataclass
class TaskRunContext:
    task: Task[..., Any]
    task_run: TaskRun
    parameters: dict[str, Any]
    flow_run_context: FlowRunContext | None
    log_prints: bool

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The current task run's context, or None outside a task run (as Prefect's)."""
        return task_run_context.get()


flow_run_context: ContextVar[FlowRunContext | None] = ContextVar(
    "stratoflow_flow_run", default=None
)
task_run_context: ContextVar[TaskRunContext | None] = ContextVar(
    "stratoflow_task_run", default=None
)


def get_run_context() -> TaskRunContext | FlowRunContext:
    """The innermost run context; raises MissingContextError outside a flow or task run."""
    task_ctx = task_run_context.get()
    if task_ctx is not None:
        return task_ctx
    flow_ctx = flow_run_context.get()
    if flow_ctx is not None:
        return flow_ctx
    raise MissingContextError(
        "There is no active flow or task run. Call this from inside a function decorated "
        "with @flow or @task."
    )
