"""Running a task run in a worker process (ProcessPoolTaskRunner).

The flow's process resolves the inputs and sets Pending; the worker process runs the
attempts, hooks and caching against a recording in-memory backend; the flow's process
then replays the recorded state changes through its own backend (so the transition
rules apply there too), stores the worker's log lines and emits the run's asset events
(with the metadata the worker added).
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from stratoflow._assets import AssetContext
from stratoflow.backends.memory import MemoryBackend
from stratoflow.cache import CacheStore, MemoryCacheStore
from stratoflow.clock import SystemClock
from stratoflow.context import FlowRunContext, Services, TaskRunContext, use_services
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.orchestration.transitions import TransitionResult
from stratoflow.results import ResultStore
from stratoflow.states import Crashed, Failed, State

if TYPE_CHECKING:
    from stratoflow.tasks import Task


class _RecordingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.task_run_states: list[State] = []

    def set_task_run_state(self, task_run_id: str, state: State, **kwargs: Any) -> TransitionResult:
        result = super().set_task_run_state(task_run_id, state, **kwargs)
        self.task_run_states.append(result.state)
        return result


@dataclass
class _Call:
    task: Task[..., Any]
    task_run: TaskRun
    parameters: dict[str, Any]
    flow: Any
    flow_run: FlowRun
    flow_parameters: dict[str, Any]
    result_store: ResultStore
    cache_store: CacheStore
    assets: AssetContext | None = None


@dataclass
class _Outcome:
    states: list[State]
    task_run: TaskRun
    logs: list[LogEntry] = field(default_factory=list)
    asset_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


def dispatch_to_process(
    processes: cf.ProcessPoolExecutor,
    task: Task[..., Any],
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_ctx: FlowRunContext,
) -> State:
    """Runs in a dispatcher thread of the flow's process; returns the final state."""
    from stratoflow.engine.task_engine import TaskRunEngine

    services = flow_ctx.services
    engine = TaskRunEngine(task, task_run, flow_ctx, services)
    prepared = engine.prepare(parameters, wait_for)
    if isinstance(prepared, State):
        return prepared
    call = _Call(
        task=task,
        task_run=copy.copy(task_run),
        parameters=prepared,
        flow=flow_ctx.flow,
        flow_run=copy.copy(flow_ctx.flow_run),
        flow_parameters=flow_ctx.parameters,
        result_store=services.result_store,
        cache_store=_shareable(services.cache_store),
        assets=engine.assets,
    )
    try:
        payload = cloudpickle.dumps(call)
    except Exception as exc:  # noqa: BLE001 - reported as the task run's failure
        return engine.finish(
            Failed(
                f"The task or its arguments could not be sent to a worker process "
                f"({type(exc).__name__}: {exc}). "
                "Use picklable arguments or the ThreadPoolTaskRunner.",
                data=exc,
            )
        )
    try:
        outcome: _Outcome = cloudpickle.loads(processes.submit(_run_in_worker, payload).result())
    except cf.process.BrokenProcessPool as exc:
        return engine.finish(Crashed(f"The worker process died: {exc}", data=exc))
    child = outcome.task_run
    # Fields first: the state changes below are what make a write-behind backend save
    # the record, and the last one must see every field.
    for name in (
        "run_count",
        "start_time",
        "end_time",
        "cache_key",
        "cache_expiration",
        "result_record",
    ):
        setattr(task_run, name, getattr(child, name))
    for state in outcome.states:
        engine.set_state(state)
    if outcome.logs:
        services.backend.write_logs(outcome.logs)
    assert task_run.state is not None
    if engine.assets is not None:
        engine.assets.materialization_metadata.update(outcome.asset_metadata)
        context = TaskRunContext(
            task=task,
            task_run=task_run,
            parameters=prepared,
            flow_run_context=flow_ctx,
            log_prints=False,
        )
        engine.emit_asset_events(task_run.state, context)
    return task_run.state


def _shareable(store: CacheStore) -> CacheStore:
    try:
        cloudpickle.dumps(store)
    except Exception:  # noqa: BLE001 - an unpicklable store is replaced, not fatal
        return MemoryCacheStore()
    return store


def _run_in_worker(payload: bytes) -> bytes:
    """Entry point in the worker process."""
    from stratoflow.engine.task_engine import TaskRunEngine

    call: _Call = cloudpickle.loads(payload)
    backend = _RecordingBackend()
    services = Services(
        backend=backend,
        clock=SystemClock(),
        result_store=call.result_store,
        cache_store=call.cache_store,
    )
    from stratoflow.task_runners import ThreadPoolTaskRunner

    flow_ctx = FlowRunContext(
        flow=call.flow,
        flow_run=call.flow_run,
        parameters=call.flow_parameters,
        task_runner=ThreadPoolTaskRunner(),
        services=services,
    )
    backend.create_flow_run(call.flow_run)
    backend.create_task_run(call.task_run)
    engine = TaskRunEngine(call.task, call.task_run, flow_ctx, services)
    engine.assets = call.assets  # for add_asset_metadata; the flow's process emits
    engine.emits_asset_events = False
    with use_services(services):
        engine.execute(call.parameters)
    logs = backend.read_logs(call.flow_run.id, task_run_id=call.task_run.id)
    outcome = _Outcome(
        states=backend.task_run_states,
        task_run=call.task_run,
        logs=logs,
        asset_metadata=call.assets.materialization_metadata if call.assets else {},
    )
    try:
        return bytes(cloudpickle.dumps(outcome))
    except Exception as exc:  # noqa: BLE001 - an unpicklable result fails the run clearly
        failed = Failed(
            f"The task's result could not be sent back from the worker process "
            f"({type(exc).__name__}: {exc}). Return a picklable value.",
        )
        for state in outcome.states:
            state.data, state.has_data = None, False
        outcome.states[-1] = failed
        return bytes(cloudpickle.dumps(outcome))
