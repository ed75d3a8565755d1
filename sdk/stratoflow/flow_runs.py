"""Pausing, suspending and resuming flow runs (Prefect's `prefect.flow_runs`).

- `pause_flow_run()` in a flow function: the run is Paused until someone resumes it. A
  deployment's run on a worker stops holding compute meanwhile (it is Suspended, as with
  `suspend_flow_run`); a run called in a process of its own waits in that process, as
  Prefect's does.
- `suspend_flow_run()`: the run stops (its process exits, its Lambda invocation returns,
  its ECS task stops) and continues in a new attempt once resumed, replaying the task
  runs it completed (docs/durability.md). Only a deployment's run can be suspended.
- With `wait_for_input=` (a RunInput, a pydantic model or a plain type), both return the
  validated input given to `resume_flow_run(run_id, run_input=...)`.
- A run not resumed within `timeout` seconds fails (FlowPauseTimeout).
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import timedelta
from typing import Any, TypeVar, overload
from uuid import UUID

from stratoflow.context import FlowRunContext, Services, get_services
from stratoflow.deployments.runs import enqueue, wait_for_flow_run
from stratoflow.durable.pauses import pause_expired
from stratoflow.durable.signals import Suspend, can_suspend, flow_body_context
from stratoflow.exceptions import FlowPauseTimeout, InvalidRunInput, NotPausedError, RunInputExists
from stratoflow.input.run_input import (
    Keyset,
    RunInput,
    keyset_from_base_key,
    run_input_subclass_from_type,
)
from stratoflow.input.schemas import UnsafeSchema, safe_schema
from stratoflow.models import FlowRun, RunInputRecord
from stratoflow.platform import Platform, get_platform
from stratoflow.states import Paused, Resuming, Running, State, StateType, Suspended

__all__ = ["pause_flow_run", "resume_flow_run", "suspend_flow_run", "wait_for_flow_run"]

T = TypeVar("T")
logger = logging.getLogger("stratoflow.durable")
DEFAULT_TIMEOUT = 3600


@overload
def pause_flow_run(
    wait_for_input: None = None, timeout: int = ..., poll_interval: int = ..., key: str | None = ...
) -> None: ...
@overload
def pause_flow_run(
    wait_for_input: type[T], timeout: int = ..., poll_interval: int = ..., key: str | None = ...
) -> T: ...
def pause_flow_run(
    wait_for_input: Any = None,
    timeout: int = DEFAULT_TIMEOUT,
    poll_interval: int = 10,
    key: str | None = None,
) -> Any:
    """Pause the current flow run until it is resumed (or `timeout` seconds pass); returns
    the input it was resumed with when `wait_for_input` is given."""
    ctx = flow_body_context("pause_flow_run")
    if can_suspend(ctx):
        return _suspend(ctx, wait_for_input, timeout, key)
    return _pause_here(ctx, wait_for_input, timeout, poll_interval, key)


def suspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: UUID | str | None = None,
    timeout: int | None = DEFAULT_TIMEOUT,
    key: str | None = None,
) -> Any:
    """Stop the current flow run without holding compute until it is resumed; it then
    continues in a new attempt that replays its completed task runs."""
    ctx = flow_body_context("suspend_flow_run")
    if flow_run_id is not None and str(flow_run_id) != ctx.flow_run.id:
        raise ValueError(
            "suspend_flow_run suspends the flow run it is called from; to stop another run, "
            "cancel it (`strato flow-run cancel`)."
        )
    if not can_suspend(ctx):
        raise RuntimeError(
            "Cannot suspend flows without a deployment: only a deployment's run, on a "
            "worker, can stop and continue later. Use pause_flow_run() to wait in this "
            "process, or deploy the flow."
        )
    return _suspend(ctx, wait_for_input, timeout, key)


def _prepare(
    ctx: FlowRunContext, wait_for_input: Any, timeout: int | None, key: str | None
) -> tuple[str, Keyset, type[RunInput] | None, dict[str, Any]]:
    key = key or ctx.next_wait_key("pause")
    keyset = keyset_from_base_key(key)
    model = run_input_subclass_from_type(wait_for_input) if wait_for_input is not None else None
    details: dict[str, Any] = {"pause_key": key}
    if timeout is not None:
        expires = ctx.services.clock.now() + timedelta(seconds=timeout)
        details["pause_timeout"] = expires.isoformat()
    if model is not None:
        model.save(keyset, flow_run_id=ctx.flow_run.id)
        details["run_input_keyset"] = dict(keyset)
    return key, keyset, model, details


def _suspend(ctx: FlowRunContext, wait_for_input: Any, timeout: int | None, key: str | None) -> Any:
    key, keyset, model, details = _prepare(ctx, wait_for_input, timeout, key)
    response = get_services().backend.run_inputs.read(ctx.flow_run.id, keyset["response"])
    if response is not None:  # resumed: this attempt goes on past the pause
        return _loaded(model, keyset, ctx.flow_run.id)
    reason = "waiting for input" if model is not None else "waiting to be resumed"
    state = Suspended(f"Suspended at {key!r}, {reason}.", pause_reschedule=True, **details)
    raise Suspend(state, key, {"kind": "pause"}, send_after=None)


def _pause_here(
    ctx: FlowRunContext, wait_for_input: Any, timeout: int, poll_interval: int, key: str | None
) -> Any:
    key, keyset, model, details = _prepare(ctx, wait_for_input, timeout, key)
    services = ctx.services
    backend = services.backend
    run = ctx.flow_run
    reason = "waiting for input" if model is not None else "waiting to be resumed"
    paused = backend.set_flow_run_state(run.id, Paused(f"Paused at {key!r}, {reason}.", **details))
    run.state, run.version = paused.state, paused.version
    deadline = services.clock.now() + timedelta(seconds=timeout)
    while True:
        services.clock.sleep(poll_interval)
        current = backend.read_flow_run(run.id)
        if current.state is not None and current.state.type is not StateType.PAUSED:
            break
        if services.clock.now() >= deadline:
            raise FlowPauseTimeout(
                f"Flow run {run.name!r} was not resumed within {timeout} seconds of pausing "
                f"at {key!r}."
            )
    if current.state.is_final():
        raise FlowPauseTimeout(f"Flow run {run.name!r} ended while paused: {current.state!r}.")
    return _loaded(model, keyset, run.id)


def _loaded(model: type[RunInput] | None, keyset: Keyset, flow_run_id: str) -> Any:
    return None if model is None else model.load(keyset, flow_run_id=flow_run_id)


def resume_flow_run(
    flow_run_id: UUID | str,
    run_input: dict[str, Any] | None = None,
    *,
    platform: Platform | None = None,
) -> FlowRun:
    """Resume a paused flow run, with the input it waits for (validated against its
    schema: a bad input raises InvalidRunInput and the run stays paused). A suspended
    run is sent back to its work queue; returns the run as resumed. `platform`: the
    installation to use (by default, the settings')."""
    run_id = str(flow_run_id)
    services = platform.services if platform is not None else get_services()
    backend = services.backend
    run = backend.read_flow_run(run_id)
    state = run.state
    if state is None or state.type is not StateType.PAUSED:
        raise NotPausedError(
            f"Flow run {run.name!r} ({run_id}) is {state!r}, not paused: only a paused run "
            "can be resumed."
        )
    key = str(state.details.get("pause_key") or "pause")
    if pause_expired(run, services.clock.now()):
        raise NotPausedError(
            f"Flow run {run.name!r} ({run_id}) paused at {key!r} until "
            f"{state.details.get('pause_timeout')}, and that has passed: it fails (Prefect's "
            "behaviour). Retry it to run it again."
        )
    keyset = keyset_from_base_key(key)
    expects_input = bool(state.details.get("run_input_keyset"))
    _check_input(run, keyset, expects_input, run_input, services)
    # Already there: a resume that stopped before the state change below; finish it.
    with contextlib.suppress(RunInputExists):
        backend.run_inputs.create(
            RunInputRecord(
                flow_run_id=run_id,
                key=keyset["response"],
                value=json.dumps(run_input),
                sender="stratoflow.resume",
                created=services.clock.now(),
            )
        )
    now = services.clock.now()
    if state.details.get("pause_reschedule"):
        resumed = Resuming("Resumed.", scheduled_time=now.isoformat())
        backend.set_flow_run_state(run_id, resumed, expected_version=run.version)
        current = backend.read_flow_run(run_id)
        enqueue(platform or get_platform(), current, now=now)
    else:  # the process that paused it waits for this
        backend.set_flow_run_state(run_id, Running("Resumed."), expected_version=run.version)
    return backend.read_flow_run(run_id)


def _check_input(
    run: FlowRun,
    keyset: Keyset,
    expects_input: bool,
    run_input: dict[str, Any] | None,
    services: Services,
) -> None:
    if not expects_input:
        if run_input is not None:
            raise InvalidRunInput(
                f"Flow run {run.name!r} does not wait for input; resume it without one."
            )
        return
    record = services.backend.run_inputs.read(run.id, keyset["schema"])
    schema = json.loads(record.value) if record is not None else None
    fields = ", ".join(sorted((schema or {}).get("properties", {}))) or "see its schema"
    if run_input is None:
        raise InvalidRunInput(
            f"Flow run {run.name!r} waits for input ({fields}): pass it, e.g. "
            f"`strato flow-run resume {run.id} --input name=value`."
        )
    if not isinstance(schema, dict):
        return  # no schema stored: the run validates the input itself when it loads it
    try:
        schema = safe_schema(schema)  # written by the run's worker: untrusted here
    except UnsafeSchema as exc:
        logger.warning(
            "Flow run %s: %s; the run checks the input itself when it resumes.", run.id, exc
        )
        return
    import jsonschema

    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(run_input),
        key=lambda e: list(e.path),
    )
    if errors:
        problems = "; ".join(_describe(e) for e in errors)
        raise InvalidRunInput(
            f"The input does not match what flow run {run.name!r} waits for: {problems}. "
            "The run stays paused."
        )


def _describe(error: Any) -> str:
    """A jsonschema ValidationError as `field: message`."""
    where = ".".join(str(p) for p in error.path)
    return f"{where}: {error.message}" if where else error.message


def paused_state_schema(state: State, flow_run_id: str) -> dict[str, Any] | None:
    """The JSON schema of the input a paused run waits for (for `inspect` and forms)."""
    keyset = state.details.get("run_input_keyset")
    if not isinstance(keyset, dict) or not isinstance(keyset.get("schema"), str):
        return None
    record = get_services().backend.run_inputs.read(flow_run_id, keyset["schema"])
    if record is None:
        return None
    loaded = json.loads(record.value)
    return loaded if isinstance(loaded, dict) else None
