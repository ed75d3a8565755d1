"""Run contexts and engine services, carried in context variables.

Context variables follow a task into the thread pool (the task runner copies the
context at submit time), so `get_run_logger()` and `stratoflow.runtime` work anywhere
inside a run.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, copy_context
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stratoflow._context_wrapper import ContextWrappedCallable
from stratoflow._tags import current_tags
from stratoflow._tags import tags as tags_block
from stratoflow.backends.memory import MemoryBackend
from stratoflow.cache import LocalFileCacheStore
from stratoflow.clock import SystemClock
from stratoflow.engine.replay import CallPositions
from stratoflow.exceptions import MissingContextError
from stratoflow.results import LocalFileSystemResultStore
from stratoflow.settings import get_settings

if TYPE_CHECKING:
    from stratoflow._assets import Asset, AssetContext
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
    durable: bool = False
    """A deployment's run on a worker: later attempts may replay this one, so its calls
    take positions (local runs, which never replay, skip that cost)."""
    positions: CallPositions = field(default_factory=CallPositions)
    """Where each task call of this attempt sits (its replay key)."""
    replay: ReplayHistory | None = None
    """Task runs earlier attempts completed, when this attempt replays them."""
    task_run_assets: dict[str, tuple[Asset, ...]] = field(default_factory=dict)
    """Asset lineage: the assets each task run passes on to those its result goes to."""
    run_results: dict[int, tuple[str, Callable[[], object] | None]] = field(default_factory=dict)
    """Asset lineage: id() of the results of those task runs (and of their items) → the
    task run, with a weak reference when the object takes one (as Prefect's)."""
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


# Carrying the run context to other threads and processes (Prefect's `with_context`,
# `serialize_context`, `hydrated_context`).


def serialize_context() -> dict[str, Any]:
    """The current run context as data for `hydrated_context` in another process: the
    flow and flow run, the task and task run, parameters, tags (pickle it with
    cloudpickle). Services stay behind: the other process uses its own."""
    flow_ctx = flow_run_context.get()
    task_ctx = task_run_context.get()
    if flow_ctx is None and task_ctx is not None:
        flow_ctx = task_ctx.flow_run_context
    tags = current_tags()
    return {
        "flow_run_context": {
            "flow": flow_ctx.flow,
            "flow_run": _without_history(flow_ctx.flow_run),
            "parameters": flow_ctx.parameters,
            "task_runner": flow_ctx.task_runner.duplicate(),
        }
        if flow_ctx is not None
        else {},
        "task_run_context": {
            "task": task_ctx.task,
            "task_run": _without_history(task_ctx.task_run),
            "parameters": task_ctx.parameters,
            "log_prints": task_ctx.log_prints,
        }
        if task_ctx is not None
        else {},
        "tags_context": {"current_tags": list(tags)} if tags else {},
    }


def _without_history(run: Any) -> Any:
    """A copy of a run record without its state history (its states' data can be large
    or unpicklable; a context only reads the current state)."""
    duplicate = copy.copy(run)
    duplicate.state_history = []
    return duplicate


@contextlib.contextmanager
def hydrated_context(serialized_context: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Enter the contexts `serialize_context()` described (nothing for None or `{}`)."""
    with contextlib.ExitStack() as stack:
        if serialized_context:
            flow_ctx = _enter_flow_run(stack, serialized_context.get("flow_run_context"))
            task_data = serialized_context.get("task_run_context")
            if task_data:
                task_ctx = TaskRunContext(
                    task=task_data["task"],
                    task_run=task_data["task_run"],
                    parameters=task_data["parameters"],
                    flow_run_context=flow_ctx,
                    log_prints=task_data.get("log_prints", False),
                )
                _set(stack, task_run_context, task_ctx)
            current = (serialized_context.get("tags_context") or {}).get("current_tags")
            if current:
                stack.enter_context(tags_block(*current))
        yield


def _enter_flow_run(
    stack: contextlib.ExitStack, data: Mapping[str, Any] | None
) -> FlowRunContext | None:
    if not data:
        return None
    services = get_services()
    # Registered first, so it runs last: after the task runner has finished its runs.
    stack.callback(services.backend.flush)
    flow_ctx = FlowRunContext(
        flow=data["flow"],
        flow_run=data["flow_run"],
        parameters=data["parameters"],
        task_runner=stack.enter_context(data["task_runner"]),
        services=services,
    )
    _set(stack, flow_run_context, flow_ctx)
    return flow_ctx


def _set(stack: contextlib.ExitStack, variable: ContextVar[Any], value: Any) -> None:
    token = variable.set(value)
    stack.callback(variable.reset, token)


def with_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, run inside the current run context wherever it is called: in a thread of this
    process (the very context: services, flow run, task run, tags), or pickled to another
    process (`multiprocessing.Pool`, `ProcessPoolExecutor`; `fn` must be importable),
    where `hydrated_context` rebuilds it from `serialize_context()`'s data."""
    return ContextWrappedCallable(fn, serialize_context(), hydrated_context, copy_context())


__all__ = [
    "AssetContext",
    "FlowRunContext",
    "Services",
    "TaskRunContext",
    "default_services",
    "flow_run_context",
    "get_run_context",
    "get_services",
    "hydrated_context",
    "serialize_context",
    "set_process_services",
    "task_run_context",
    "use_services",
    "with_context",
]


def __getattr__(name: str) -> Any:
    # `from stratoflow.context import AssetContext` (Prefect's path) loads the assets
    # module on first use: every Lambda imports this module, few flows use assets.
    if name == "AssetContext":
        from stratoflow._assets import AssetContext

        return AssetContext
    raise AttributeError(f"module 'stratoflow.context' has no attribute {name!r}")
