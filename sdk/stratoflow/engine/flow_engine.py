"""Runs one flow run: parameters, attempts with retries and timeout, final state, hooks.

The run's steps are written once (generators, see `stratoflow.engine.steps`): a `def`
flow's run blocks on them (`run`), an `async def` flow's run awaits them (`run_async`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stratoflow._tags import current_tags, merge_tags
from stratoflow.context import (
    FlowRunContext,
    Services,
    flow_run_context,
    get_services,
    task_run_context,
)
from stratoflow.durable.signals import Suspend
from stratoflow.engine.active_runs import (
    register_active_run,
    request_cancellation,
    signal_cancellation,
    unregister_active_run,
)
from stratoflow.engine.durable_steps import DurableSteps
from stratoflow.engine.flow_results import (
    NOT_RETURNED,
    flow_call_result,
    flow_state_from_return,
    returned_value,
)
from stratoflow.engine.hooks import Hooks
from stratoflow.engine.naming import name_flow_run
from stratoflow.engine.replay import ReplayHistory
from stratoflow.engine.steps import Blocking, Sleep, Steps, drive, drive_async, run_to_completion
from stratoflow.engine.subflow_replay import (
    recorded_subflow,
    subflow_position,
)
from stratoflow.engine.subflow_replay import subflow_id as subflow_id_of
from stratoflow.engine.user_code import Body
from stratoflow.exceptions import (
    FlowRunCancelled,
    FlowRunTimeoutError,
    ParameterValidationError,
    ReplayDivergenceError,
)
from stratoflow.logging import (
    RunLoggerAdapter,
    install_print_capture,
    log_prints_enabled,
    run_logger_for,
)
from stratoflow.models import FlowRun
from stratoflow.retries import delay_before_retry, jittered
from stratoflow.run_ids import subflow_run_id
from stratoflow.states import (
    AwaitingRetry,
    Cancelled,
    Crashed,
    Failed,
    Pending,
    Retrying,
    Running,
    State,
    StateType,
)
from stratoflow.task_runners import TaskRunner, ThreadPoolTaskRunner

if TYPE_CHECKING:
    from stratoflow.flows import Flow

# signal_cancellation and request_cancellation are imported from here by their callers.
__all__ = [
    "FlowRunEngine",
    "call_flow",
    "call_flow_async",
    "request_cancellation",
    "signal_cancellation",
]


def call_flow(
    flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, return_state: bool
) -> Any:
    """A call `my_flow(...)`: runs a flow run (a child run when inside another flow) to
    its end, an async flow's too (the CLI runs any flow this way)."""
    engine = _new_engine(flow)
    state = engine.run(args, kwargs)
    return state if return_state else flow_call_result(state, engine.returned)


async def call_flow_async(
    flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, return_state: bool
) -> Any:
    """`await my_async_flow(...)`: runs the flow run on the running event loop."""
    engine = _new_engine(flow)
    state = await engine.run_async(args, kwargs)
    return state if return_state else flow_call_result(state, engine.returned)


def _new_engine(flow: Flow[..., Any]) -> FlowRunEngine:
    parent = flow_run_context.get()
    services = parent.services if parent is not None else get_services()
    return FlowRunEngine(flow, services, parent)


class FlowRunEngine(DurableSteps):
    def __init__(
        self, flow: Flow[..., Any], services: Services, parent: FlowRunContext | None = None
    ) -> None:
        self.flow = flow
        self.options = flow.options
        self.services = services
        self.parent = parent
        self.flow_run: FlowRun | None = None
        self._logger: RunLoggerAdapter | None = None
        self.returned: Any = NOT_RETURNED  # what the last attempt's function returned
        self._history: ReplayHistory | None = None

    @property
    def run_record(self) -> FlowRun:
        assert self.flow_run is not None
        return self.flow_run

    @property
    def logger(self) -> RunLoggerAdapter:
        if self._logger is None:
            self._logger = run_logger_for(flow_run=self.run_record, flow_name=self.flow.name)
        return self._logger

    def set_state(self, state: State) -> State:
        state.details["flow_run_id"] = self.run_record.id
        result = self.services.backend.set_flow_run_state(self.run_record.id, state)
        self.run_record.state = result.state
        self.run_record.version = result.version
        return result.state

    # Entry points. The blocking ones also run an async flow, on an event loop of its own.

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> State:
        """Create the flow run and run it to its final state."""
        return self._drive(self._run(args, kwargs))

    async def run_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> State:
        """`run` for an async flow, on the running event loop."""
        return await drive_async(self._run(args, kwargs))

    def run_existing(self, flow_run: FlowRun) -> State:
        """Run a flow run that already exists (a deployment's run claimed by a worker):
        its parameters are validated now, and its attempts continue from its run count."""
        return self._drive(self._run_existing(flow_run))

    def _drive(self, steps: Steps[State]) -> State:
        if self.flow.isasync:
            return run_to_completion(drive_async(steps))
        return drive(steps)

    # The steps.

    def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Steps[State]:
        problem: Exception | None = None
        try:
            parameters = self.flow.bind(args, kwargs)
        except TypeError as exc:
            problem = ParameterValidationError(str(exc))
            parameters = dict(kwargs)
        subflow_id = None
        if self.parent is not None and self.parent.durable:
            position = subflow_position(self.parent, self.flow.name)
            subflow_id = subflow_id_of(self.parent, position)
            earlier = recorded_subflow(self.parent, subflow_id)
            if earlier is not None:
                return (yield from self._replay_subflow(earlier))
        name_problem = self._create_run(parameters, subflow_id)
        problem = problem or name_problem
        name = self.run_record.name
        self.set_state(Pending())
        self.logger.info("Beginning flow run %r for flow %r", name, self.flow.name)
        if problem is None and self.options.validate_parameters:
            try:
                parameters = self.flow.validate_parameters(parameters)
            except ParameterValidationError as exc:
                problem = exc
        if problem is not None:
            return (yield from self._finish(Failed(str(problem), data=problem)))
        return (yield from self._run_with_context(parameters))

    def _run_existing(self, flow_run: FlowRun) -> Steps[State]:
        self.flow_run = flow_run
        self.services.backend.adopt_flow_run(flow_run)
        self.logger.info(
            "Beginning flow run %r for flow %r (deployment %r)",
            flow_run.name,
            self.flow.name,
            flow_run.deployment_name,
        )
        parameters = dict(flow_run.parameters)
        self._history = self._replay_history(flow_run)
        if self.options.validate_parameters:
            try:
                parameters = self.flow.validate_parameters(parameters)
            except ParameterValidationError as exc:
                return (yield from self._finish(Failed(str(exc), data=exc)))
        return (yield from self._run_with_context(parameters))

    def _create_run(self, parameters: dict[str, Any], subflow_id: str | None) -> Exception | None:
        """Create the run record; returns the problem with its run name template, if any."""
        parent = self.parent
        parent_task = task_run_context.get() if parent is not None else None
        extra_tags = current_tags()
        self.flow_run = FlowRun(
            # A subflow's id carries its parent's pool tag: its items are written with
            # the parent's credentials (stratoflow.run_ids).
            id=subflow_id
            or (subflow_run_id(parent.flow_run.id) if parent is not None else str(uuid.uuid4())),
            name="",
            flow_name=self.flow.name,
            flow_version=self.options.version,
            parameters=self.flow.record_parameters(parameters),
            tags=merge_tags(self.options.tags, extra_tags),
            parent_flow_run_id=parent.flow_run.id if parent is not None else None,
            parent_task_run_id=parent_task.task_run.id if parent_task is not None else None,
            created=self.services.clock.now(),
        )
        self.flow_run.name, problem = name_flow_run(
            self.flow, self.flow_run, parameters, self.services
        )
        self.services.backend.create_flow_run(self.flow_run)
        self.services.backend.adopt_flow_run(self.flow_run)
        return problem

    def _run_with_context(self, parameters: dict[str, Any]) -> Steps[State]:
        record = self.run_record
        runner = (self.options.task_runner or ThreadPoolTaskRunner()).duplicate()
        ctx = FlowRunContext(
            flow=self.flow,
            flow_run=record,
            parameters=parameters,
            task_runner=runner,
            services=self.services,
            durable=self.services.retry_handoff is not None,
            replay=self._history,
        )
        register_active_run(ctx)
        token = flow_run_context.set(ctx)
        # A subflow called inside a task: its body (and its own subflows) are not part
        # of that task run.
        task_token = task_run_context.set(None)
        try:
            # Hooks run inside the run's context, so they can use get_run_logger().
            state = yield from self._attempts_then_drain(ctx, runner)
            return (yield from self._finish(state))
        finally:
            task_run_context.reset(task_token)
            flow_run_context.reset(token)
            unregister_active_run(record.id)

    def _attempts_then_drain(self, ctx: FlowRunContext, runner: TaskRunner) -> Steps[State]:
        """Run the attempts, then wait for every submitted task run to finish."""
        try:
            state = yield from self._attempts_or_cancelled(ctx)
            yield Blocking(lambda: runner.shutdown(wait=True))
        except Suspend as signal:
            # The task runs it started finish and are recorded before the run waits.
            yield Blocking(lambda: runner.shutdown(wait=True))
            return self._suspend(signal)
        except BaseException as exc:
            runner.shutdown(wait=False)
            yield from self._finish(
                Crashed(f"Flow run crashed: {type(exc).__name__}: {exc}", data=exc)
            )
            raise
        # The run ends now, after its submitted task runs, not when its body returned.
        # (A copy: a returned state may be a task run's own state.)
        return state.copy(timestamp=datetime.now(UTC), details=dict(state.details))

    def _attempts_or_cancelled(self, ctx: FlowRunContext) -> Steps[State]:
        try:
            return (yield from self._attempts(ctx))
        except FlowRunCancelled as exc:
            self.returned = NOT_RETURNED
            return Cancelled(str(exc) or "The flow run was cancelled.")

    def _attempts(self, ctx: FlowRunContext) -> Steps[State]:
        record = self.run_record
        retries = self.options.retries
        record.retries = retries  # written with the next transition, for the crash sweep
        attempt = record.run_count  # a redelivered run continues its attempts
        while True:
            attempt += 1
            record.run_count = attempt
            running = self.set_state(Running() if attempt == 1 else Retrying())
            if attempt == 1:
                record.start_time = running.timestamp
                if self.options.on_running:
                    yield Hooks(self.options.on_running, (self.flow, record, running), self.logger)
            state = yield from self._call(ctx)
            if state.type is StateType.FAILED and ctx.cancel_requested.is_set():
                # e.g. future.result() of a task stopped by the cancellation raised in
                # the body: the run was cancelled, not failed, and is not retried.
                raise FlowRunCancelled(f"Flow run {record.name!r} was cancelled.")
            if state.type is not StateType.FAILED or record.retries_used >= retries:
                return state
            if isinstance(state.data, ReplayDivergenceError):
                return state  # another attempt would diverge the same way
            delay = jittered(
                delay_before_retry(self.options.retry_delay_seconds, retries, attempt - 1),
                None,
                self.services.rng,
            )
            clock = self.services.clock
            self.logger.info(
                "Flow run failed (%s) - retry %d/%d will start %.3g second(s) from now",
                state.message,
                attempt,
                retries,
                delay,
            )
            awaiting = AwaitingRetry(
                state.message, scheduled_time=clock.now() + timedelta(seconds=delay)
            )
            awaiting = self.set_state(awaiting)
            hand_off = self.services.retry_handoff
            if hand_off is not None and hand_off(record, delay):
                # A deployed run: its queue redelivers it after the delay, and a worker
                # claims it again; this process does not wait.
                return awaiting
            yield Sleep(clock, delay)

    def _call(self, ctx: FlowRunContext) -> Steps[State]:
        flow = self.flow
        parameters = ctx.parameters
        self.returned = NOT_RETURNED
        log_prints = bool(self.options.log_prints)
        if log_prints:
            install_print_capture()
        prints_token = log_prints_enabled.set(log_prints)
        try:
            outcome = yield Body(
                lambda: flow.call_fn(parameters),
                "Flow",
                self.run_record.name,
                self.options.timeout_seconds,
                FlowRunTimeoutError,
            )
        finally:
            log_prints_enabled.reset(prints_token)
        if isinstance(outcome, State):
            return outcome
        returned = self.returned = returned_value(outcome.value)
        return flow_state_from_return(
            returned, self.options, self.services, self.run_record, self.logger
        )

    def _finish(self, state: State) -> Steps[State]:
        record = self.run_record
        record.end_time = state.timestamp
        # Task runs are durable before the flow run says it is over.
        self.services.backend.flush()
        # A state the attempts already recorded (a retry handed off) is not set twice: a
        # worker may already be claiming the retry, and a second write would race it.
        handed_off = state.type is StateType.SCHEDULED and (
            record.state is not None and record.state.type is StateType.SCHEDULED
        )
        if record.state is state or handed_off or state.type is StateType.PAUSED:
            assert record.state is not None
            final = record.state
        else:
            final = self.set_state(state)
        options = self.options
        hooks_by_type = {
            StateType.COMPLETED: options.on_completion,
            StateType.FAILED: options.on_failure,
            StateType.CANCELLED: options.on_cancellation,
            StateType.CRASHED: options.on_crashed,
        }
        history = self._history
        if history is not None and history.replayed:
            self.logger.info(
                "Replayed %d task run(s) completed in earlier attempts", history.replayed
            )
        if final.type in (StateType.PAUSED, StateType.SCHEDULED) and final.name != "AwaitingRetry":
            self.logger.info("%s", final.message or final.name)
        elif final.type in (StateType.COMPLETED, StateType.SCHEDULED):
            self.logger.info("Finished in state %s", final)
        else:
            exc = final.data if isinstance(final.data, BaseException) else None
            self.logger.error("Finished in state %s", final, exc_info=exc)
        hooks = hooks_by_type.get(final.type, ())
        if hooks:
            yield Hooks(hooks, (self.flow, record, final), self.logger)
        if self.parent is None:
            self.services.backend.flush()  # the run's last log lines
        return final
