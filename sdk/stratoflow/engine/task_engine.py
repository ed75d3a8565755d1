"""Runs one task run: inputs, cache, attempts with retries and timeout, result, hooks.

The run's steps are written once (generators, see `stratoflow.engine.steps`): a `def`
task's run blocks on them (`run`), an `async def` task's run awaits them (`run_async`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stratoflow._assets import NO_ASSETS, AssetContext
from stratoflow.cache_policies import NONE
from stratoflow.context import FlowRunContext, Services, TaskRunContext, task_run_context
from stratoflow.engine.assets import asset_context_for, emit_asset_events, link_result
from stratoflow.engine.caching import cache_key_for, cached_state
from stratoflow.engine.concurrency_slots import acquire_tag_slots, release_tag_slots
from stratoflow.engine.hooks import Hooks
from stratoflow.engine.inputs import resolve_inputs
from stratoflow.engine.return_values import (
    completed_with,
    decides_state,
    return_value_to_state,
)
from stratoflow.engine.steps import Blocking, Sleep, Steps, drive, drive_async, run_to_completion
from stratoflow.engine.task_results import persist_task_result
from stratoflow.engine.transaction_steps import attempts_in_transaction
from stratoflow.engine.user_code import Body
from stratoflow.exceptions import (
    FlowRunCancelled,
    TaskRunStopped,
    TaskRunTimeoutError,
    UpstreamTaskError,
)
from stratoflow.logging import (
    TASK_RUN_LOGGER,
    RunLoggerAdapter,
    install_print_capture,
    log_prints_enabled,
    run_logger_for,
)
from stratoflow.models import TaskRun
from stratoflow.retries import delay_before_retry, jittered
from stratoflow.states import (
    AwaitingRetry,
    Cancelled,
    Crashed,
    NotReady,
    Pending,
    Retrying,
    Running,
    State,
    StateType,
)

if TYPE_CHECKING:
    from stratoflow.tasks import Task


NOT_RETURNED: Any = object()
"""`TaskRunEngine.returned` when the function did not return (it raised, or never ran)."""


class TaskRunEngine:
    __slots__ = (
        "_logger",
        "_retriable",
        "assets",
        "emits_asset_events",
        "flow_ctx",
        "options",
        "returned",
        "run_record",
        "services",
        "task",
    )

    def __init__(
        self,
        task: Task[..., Any],
        task_run: TaskRun,
        flow_ctx: FlowRunContext | None,
        services: Services,
    ) -> None:
        self.task = task
        self.options = task.options
        self.run_record = task_run
        self.flow_ctx = flow_ctx
        self.services = services
        self._logger: RunLoggerAdapter | None = None
        # What the function returned in the last attempt: a direct call gives it back
        # as it is (Prefect's `_return_value`), a returned State included.
        self.returned: Any = NOT_RETURNED
        self._retriable = True
        # Its assets (stratoflow.engine.assets), known once its inputs are; a worker
        # process of the ProcessPoolTaskRunner gets them from the flow's process, which
        # emits the events.
        self.assets: AssetContext | None = None
        self.emits_asset_events = True

    @property
    def logger(self) -> RunLoggerAdapter:
        if self._logger is None:
            flow_ctx = self.flow_ctx
            self._logger = run_logger_for(
                flow_run=flow_ctx.flow_run if flow_ctx else None,
                flow_name=flow_ctx.flow.name if flow_ctx else None,
                task_run=self.run_record,
            )
        return self._logger

    def set_state(self, state: State) -> State:
        record = self.run_record
        state.details["task_run_id"] = record.id
        if record.flow_run_id is not None:
            state.details["flow_run_id"] = record.flow_run_id
        if record.tags and state.is_final():
            # Give back tag concurrency slots, even if the write fails. (A run without
            # tags never takes any: `_prepare`.)
            release_tag_slots(self)
        result = self.services.backend.set_task_run_state(record.id, state)
        self.run_record.state = result.state
        self.run_record.version = result.version
        return result.state

    # Entry points. The blocking ones also run an async task: on an event loop of
    # their own (a task runner's thread, a worker process).

    def run(self, parameters: dict[str, Any], wait_for: Iterable[Any] | None) -> State:
        """Run the task run to a final state; only a crash (BaseException) escapes."""
        return self._drive(self._run(parameters, wait_for))

    async def run_async(self, parameters: dict[str, Any], wait_for: Iterable[Any] | None) -> State:
        """`run` for an async task, on the running event loop."""
        return await drive_async(self._run(parameters, wait_for))

    def prepare(
        self, parameters: dict[str, Any], wait_for: Iterable[Any] | None
    ) -> dict[str, Any] | State:
        """Resolve inputs and set Pending. Returns the resolved parameters, or the final
        state when the run must not start (an upstream failed, the flow was cancelled)."""
        return drive(self._prepare(parameters, wait_for))

    def execute(self, parameters: dict[str, Any]) -> State:
        """Cache lookup, attempts with retries, cache write, final state and hooks."""
        return self._drive(self._execute(parameters))

    def finish(self, state: State) -> State:
        """Record the final state and run its hooks."""
        return drive(self._finish(state))

    def _drive(self, steps: Steps[State]) -> State:
        if self.task.isasync:
            return run_to_completion(drive_async(steps))
        return drive(steps)

    # The steps.

    def _run(self, parameters: dict[str, Any], wait_for: Iterable[Any] | None) -> Steps[State]:
        prepared = yield from self._prepare(parameters, wait_for)
        if isinstance(prepared, State):
            return prepared
        return (yield from self._execute(prepared))

    def _prepare(
        self, parameters: dict[str, Any], wait_for: Iterable[Any] | None
    ) -> Steps[dict[str, Any] | State]:
        if self.run_record.replayed:  # completed by an earlier attempt of the flow run
            assert self.run_record.state is not None
            return self.run_record.state
        if _debug_enabled():
            self.logger.debug(
                "Created task run %r for task %r", self.run_record.name, self.task.name
            )
        resolved = resolve_inputs(parameters, wait_for)
        self.run_record.task_inputs = resolved.task_inputs
        self.set_state(Pending())
        if resolved.failure is not None:
            failure = resolved.failure
            message = (
                f"Upstream task run {failure.task_run_name!r} (argument {failure.parameter!r}) "
                f"ended in state {failure.state.name!r}, so this task run did not start. "
                "Wrap the argument in allow_failure(...) to run it anyway."
            )
            return (yield from self._finish(NotReady(message, data=UpstreamTaskError(message))))
        flow_ctx = self.flow_ctx
        if flow_ctx is not None and flow_ctx.cancel_requested.is_set():
            return (
                yield from self._finish(
                    Cancelled("The flow run was cancelled before this task run started.")
                )
            )
        if self.run_record.tags:  # tag concurrency limits: may wait, then hold slots
            try:
                waited: State | None = yield Blocking(lambda: acquire_tag_slots(self))
            except BaseException as exc:
                # An async run cancelled while it waited. (A crash inside the wait has
                # already ended the run.)
                current = self.run_record.state
                if current is None or not current.is_final():
                    crashed = Crashed(f"Task run crashed: {type(exc).__name__}: {exc}", data=exc)
                    yield from self._finish(crashed)  # gives back a slot taken meanwhile
                raise
            if waited is not None:
                return waited
        self.assets = asset_context_for(self.task, self.run_record, flow_ctx, resolved.parameters)
        return resolved.parameters

    def _execute(self, parameters: dict[str, Any]) -> Steps[State]:
        record = self.run_record
        context = TaskRunContext(
            task=self.task,
            task_run=record,
            parameters=parameters,
            flow_run_context=self.flow_ctx,
            log_prints=self._log_prints(),
        )
        cache_key = (
            None  # most tasks do not cache: no logger is built for them
            if self.task.cache_policy is NONE
            else cache_key_for(self.task, context, self.flow_ctx, self.logger)
        )
        if cache_key is not None:
            record.cache_key = cache_key
            if not self.options.refresh_cache:
                hit = cached_state(cache_key, self.services, record, self.task.cache_policy)
                if hit is not None:
                    return (yield from self._finish(hit))
        try:
            state = yield from attempts_in_transaction(self, cache_key, self._attempts(context))
        except FlowRunCancelled:
            yield from self._finish(
                Cancelled("The flow run was cancelled while this task run ran.")
            )
            raise
        except TaskRunStopped:
            raise  # its state was written by whoever stopped it: nothing more to record
        except BaseException as exc:
            yield from self._finish(
                Crashed(f"Task run crashed: {type(exc).__name__}: {exc}", data=exc)
            )
            raise
        final = yield from self._finish(state)
        if self.emits_asset_events:
            self.emit_asset_events(final, context)
        return final

    def emit_asset_events(self, state: State, context: TaskRunContext) -> None:
        """The asset events of the run's end in `state` (a @materialize task's run)."""
        if self.assets is not None:
            emit_asset_events(self.assets, state, context, self.logger)

    def _attempts(self, context: TaskRunContext) -> Steps[State]:
        options = self.options
        record = self.run_record
        retries = options.retries
        # A background run retried after a crash continues its attempts (0 for a new run).
        attempt = record.run_count
        while True:
            attempt += 1
            record.run_count = attempt
            running = self.set_state(Running() if attempt == 1 else Retrying())
            if record.start_time is None:
                record.start_time = running.timestamp
            if options.on_running:  # each attempt enters Running, as in Prefect
                yield Hooks(options.on_running, (self.task, record, running), self.logger)
            state = yield from self._call(context)
            if state.type is not StateType.FAILED or attempt > retries or not self._retriable:
                return state
            if not self._should_retry(state):
                return state
            delay = jittered(
                delay_before_retry(options.retry_delay_seconds, retries, attempt - 1),
                options.retry_jitter_factor,
                self.services.rng,
            )
            clock = self.services.clock
            self.logger.info(
                "Task run failed with %s - retry %d/%d will start %.3g second(s) from now",
                _describe(state),
                attempt,
                retries,
                delay,
            )
            self.set_state(
                AwaitingRetry(state.message, scheduled_time=_in_seconds(clock.now(), delay))
            )
            yield Sleep(clock, delay)

    def _call(self, context: TaskRunContext) -> Steps[State]:
        task = self.task
        parameters = context.parameters
        self.returned = NOT_RETURNED
        self._retriable = True
        token = task_run_context.set(context)
        prints_token = log_prints_enabled.set(context.log_prints)
        assets_token = AssetContext.__var__.set(self.assets or NO_ASSETS)
        try:
            outcome = yield Body(
                lambda: task.call_fn(parameters),
                "Task",
                self.run_record.name,
                self.options.timeout_seconds,
                TaskRunTimeoutError,
            )
        finally:
            AssetContext.__var__.reset(assets_token)
            log_prints_enabled.reset(prints_token)
            task_run_context.reset(token)
        if isinstance(outcome, State):
            return outcome
        value = self.returned = outcome.value
        if decides_state(value):
            # Prefect retries a returned failed state, not a returned list of states.
            self._retriable = isinstance(value, State)
            return return_value_to_state(value)
        return self._completed(completed_with(value), context)

    def _completed(self, state: State, context: TaskRunContext) -> State:
        """Persist the returned value (`state.data`) when the run's settings ask for it."""
        persisted = persist_task_result(
            state,
            self.options,
            self.run_record,
            self.flow_ctx,
            self.services,
            context.parameters,
            lambda: self.logger,
        )
        if persisted is not state:  # a required persist failed: a direct call raises it
            self.returned = NOT_RETURNED
        return persisted

    def _should_retry(self, state: State) -> bool:
        condition = self.options.retry_condition_fn
        if condition is None:
            return True
        try:
            return bool(condition(self.task, self.run_record, state))
        except Exception:
            self.logger.exception("retry_condition_fn raised; the task run will not be retried")
            return False

    def _finish(self, state: State) -> Steps[State]:
        record = self.run_record
        record.end_time = state.timestamp
        final = self.set_state(state)
        task = self.task
        if final.type is StateType.COMPLETED:
            flow_ctx = self.flow_ctx
            if (
                self.assets is not None
                and flow_ctx is not None
                and self.returned is not NOT_RETURNED
            ):
                # So that later task runs find it among their arguments (lineage).
                link_result(flow_ctx, record.id, self.returned)
            if self.flow_ctx is None:  # Prefect logs every task run's end at INFO
                self.logger.info("Finished in state %s", final)
            else:
                self._log_debug("Finished in state %s", final)
            if self.options.on_completion:
                yield Hooks(self.options.on_completion, (task, record, final), self.logger)
        elif final.type is StateType.FAILED:
            exc = final.data if isinstance(final.data, BaseException) else None
            self.logger.error(
                "Finished in state %s", final, exc_info=exc if final.name != "NotReady" else None
            )
            if self.options.on_failure:
                yield Hooks(self.options.on_failure, (task, record, final), self.logger)
        else:
            self.logger.error("Finished in state %s", final)
        return final

    def _log_debug(self, message: str, *args: Any) -> None:
        if _debug_enabled():
            self.logger.debug(message, *args)

    # Settings inherited from the flow when the task leaves them unset.

    def _log_prints(self) -> bool:
        own = self.options.log_prints
        if own is None:
            own = bool(self.flow_ctx and self.flow_ctx.flow.options.log_prints)
        if own:
            install_print_capture()
        return own


def _describe(state: State) -> str:
    data = state.data
    if isinstance(data, BaseException):
        return f"{type(data).__name__}: {data}"
    return state.message or state.name


def _in_seconds(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


_task_run_logger = logging.getLogger(TASK_RUN_LOGGER)


def _debug_enabled() -> bool:
    return _task_run_logger.isEnabledFor(logging.DEBUG)
