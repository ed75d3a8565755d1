"""Calling a task: `my_task(...)` (sync), `await my_async_task(...)`, and the task runs
that task runners start. Each creates the task run record, then runs it with
`TaskRunEngine`."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from stratoflow._callables import render_run_name
from stratoflow._tags import current_tags, merge_tags
from stratoflow.context import (
    FlowRunContext,
    Services,
    TaskRunContext,
    flow_run_context,
    get_services,
    task_run_context,
)
from stratoflow.durable.signals import hand_back_if_out_of_time
from stratoflow.engine.replay import FLOW_SCOPE, CallPosition, ReplayHistory
from stratoflow.engine.replay import logger as replay_logger
from stratoflow.engine.task_engine import NOT_RETURNED, TaskRunEngine
from stratoflow.exceptions import FlowRunCancelled
from stratoflow.models import TaskRun
from stratoflow.run_ids import random_run_id
from stratoflow.states import State

if TYPE_CHECKING:
    from stratoflow.tasks import Task

_standalone_keys = itertools.count()


def call_task(
    task: Task[..., Any],
    parameters: dict[str, Any],
    *,
    wait_for: Iterable[Any] | None,
    return_state: bool,
) -> Any:
    """A direct call `my_task(...)`: runs the task run in this thread."""
    engine = _new_engine(task, parameters)
    state = engine.run(parameters, wait_for)
    return _outcome(engine, state, return_state)


async def call_task_async(
    task: Task[..., Any],
    parameters: dict[str, Any],
    *,
    wait_for: Iterable[Any] | None,
    return_state: bool,
) -> Any:
    """`await my_async_task(...)`: runs the task run on the running event loop. (As in
    Prefect, the run is created when the coroutine starts, not when it is made.)"""
    engine = _new_engine(task, parameters)
    state = await engine.run_async(parameters, wait_for)
    return _outcome(engine, state, return_state)


def _new_engine(task: Task[..., Any], parameters: dict[str, Any]) -> TaskRunEngine:
    flow_ctx = flow_run_context.get()
    if flow_ctx is not None and flow_ctx.cancel_requested.is_set():
        raise FlowRunCancelled(f"Flow run {flow_ctx.flow_run.name!r} was cancelled.")
    services = flow_ctx.services if flow_ctx is not None else get_services()
    task_run = create_task_run(task, flow_ctx, parameters, services)
    return TaskRunEngine(task, task_run, flow_ctx, services)


def _outcome(engine: TaskRunEngine, state: State, return_state: bool) -> Any:
    """What the call gives back: the final state, or (as Prefect's `result()`) what the
    function returned when it returned (a State included, which is then not raised),
    else the state's result (a cached value, or the run's exception raised)."""
    if engine.flow_ctx is None:
        engine.services.backend.flush()  # a task run outside any flow: nothing flushes it later
    if return_state:
        return state
    returned = engine.returned
    if returned is not NOT_RETURNED and state.is_final():
        return returned
    return state.result()


def run_task_run(
    task: Task[..., Any],
    task_run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_ctx: FlowRunContext | None,
    services: Services,
) -> State:
    """Run a created task run to a final state in this thread (an async task on an event
    loop of its own); only a crash (BaseException) escapes."""
    return TaskRunEngine(task, task_run, flow_ctx, services).run(parameters, wait_for)


def create_task_run(
    task: Task[..., Any],
    flow_ctx: FlowRunContext | None,
    parameters: dict[str, Any],
    services: Services,
) -> TaskRun:
    """Create the task run record (named in submission order) before it runs; or, when an
    earlier attempt of the flow run completed this call, give back its recorded run
    (`replayed`, not run again: stratoflow.engine.replay)."""
    position: CallPosition | None = None
    if flow_ctx is not None:
        if flow_ctx.durable:
            position = _position(task, flow_ctx)
            if flow_ctx.replay is not None:
                recorded = replayed_run(task, flow_ctx, flow_ctx.replay, position)
                if recorded is not None:
                    return recorded
            if flow_ctx.services.time_left is not None and position.scope == FLOW_SCOPE:
                hand_back_if_out_of_time(flow_ctx, task.options.timeout_seconds)
        dynamic_key = flow_ctx.next_dynamic_key(task.task_key)
        flow_run_id: str | None = flow_ctx.flow_run.id
    else:
        dynamic_key = next(_standalone_keys)
        flow_run_id = None
    extra_tags = current_tags()
    task_run = TaskRun(
        id=random_run_id(),
        name=f"{task.name}-{dynamic_key}",
        task_key=task.task_key,
        dynamic_key=str(dynamic_key),
        task_name=task.name,
        flow_run_id=flow_run_id,
        task_version=task.options.version,
        tags=merge_tags(task.options.tags, extra_tags) if extra_tags else task.options.tags,
        created=services.clock.now(),
    )
    if position is not None:
        assert flow_ctx is not None
        task_run.replay_key = position.key
        task_run.call_index = position.call_index
        task_run.flow_run_attempt = flow_ctx.flow_run.run_count
    template = task.options.task_run_name
    if template is not None:
        task_run.name = _render_task_run_name(template, task, task_run, parameters, flow_ctx)
    services.backend.create_task_run(task_run)
    return task_run


def _position(task: Task[..., Any], flow_ctx: FlowRunContext) -> CallPosition:
    """The call's position: in the task run calling it, or in the flow function."""
    caller = task_run_context.get()
    scope = FLOW_SCOPE
    if caller is not None and caller.task_run.replay_key is not None:
        scope = caller.task_run.replay_key
    return flow_ctx.positions.next(scope, task.task_key)


def replayed_run(
    task: Task[..., Any], flow_ctx: FlowRunContext, history: ReplayHistory, position: CallPosition
) -> TaskRun | None:
    """The recorded run of this call when an earlier attempt completed it and its result
    can be read back; None when the call runs (from then on, its scope is live)."""
    positions = flow_ctx.positions
    if not positions.is_live(position.scope):
        history.check_position(position, task.task_key, task.name)
    recorded = history.recorded(position.key)
    if recorded is not None and recorded.state is not None:
        try:
            # Read back (and verified) now, once, rather than in the user's code.
            value = recorded.state.result()
        except Exception as exc:  # noqa: BLE001 - an unreadable result: the call runs again
            replay_logger.warning(
                "Task run %r completed in attempt %s but its result cannot be read back "
                "(%s: %s); running it again.",
                recorded.name,
                recorded.flow_run_attempt,
                type(exc).__name__,
                exc,
            )
        else:
            recorded.state = recorded.state.copy(data=value, has_data=True)
            recorded.replayed = True
            history.replayed += 1
            replay_logger.debug(
                "Replayed task run %r (completed in attempt %s)",
                recorded.name,
                recorded.flow_run_attempt,
            )
            return recorded
    positions.went_live(position.scope)
    return None


def _render_task_run_name(
    template: str | Callable[[], str],
    task: Task[..., Any],
    task_run: TaskRun,
    parameters: dict[str, Any],
    flow_ctx: FlowRunContext | None,
) -> str:
    owner = f"task {task.name!r}"
    if not callable(template):
        return render_run_name(template, parameters, owner)
    # A callable reads the run from stratoflow.runtime (task_run.parameters, ...), as in
    # Prefect, so it is called inside a context for the run being named.
    context = TaskRunContext(
        task=task,
        task_run=task_run,
        parameters=parameters,
        flow_run_context=flow_ctx,
        log_prints=False,
    )
    token = task_run_context.set(context)
    try:
        return render_run_name(template, parameters, owner)
    finally:
        task_run_context.reset(token)
