"""Creating runs of deployments and sending them to their work queue."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stratoflow.deployments.models import Deployment
from stratoflow.deployments.parameter_schema import check_parameter_types
from stratoflow.exceptions import (
    ConflictError,
    InvalidTransitionError,
    ObjectNotFound,
    ParameterValidationError,
)
from stratoflow.models import FlowRun
from stratoflow.names import generate_run_name
from stratoflow.platform import Platform, get_platform
from stratoflow.run_ids import new_flow_run_id
from stratoflow.states import AwaitingRetry, Scheduled, StateType
from stratoflow.workers.messages import FlowRunMessage
from stratoflow.workers.ownership import NotInPoolNamespace, namespace_problem

if TYPE_CHECKING:
    from stratoflow.backends.base import Backend

_NAMESPACE = uuid.UUID("5f1d9a36-8c1e-4a57-9c7e-2d1b7a0f3e42")


def _key_seed(deployment_name: str, idempotency_key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{deployment_name}\x00{idempotency_key}")


def flow_run_id_for(deployment_name: str, idempotency_key: str, *, pool: str) -> str:
    """The same deployment and key always give the same run id: creating it twice is a
    conditional-put conflict, never a second run. It carries the pool (run_ids)."""
    return new_flow_run_id(pool, seed=_key_seed(deployment_name, idempotency_key))


def _made_before_ids_carried_pools(
    backend: Backend, deployment_name: str, idempotency_key: str
) -> FlowRun | None:
    """The run an earlier version made for this key (its id was the plain uuid5), so
    that upgrading never runs a scheduled slot or a keyed run twice."""
    try:
        return backend.read_flow_run(str(_key_seed(deployment_name, idempotency_key)))
    except ObjectNotFound:
        return None


def check_parameters(deployment: Deployment, parameters: Mapping[str, Any]) -> None:
    """Unknown, missing or mistyped parameters (against the deployment's parameter schema),
    caught before a run exists; the worker validates them again with the flow's type hints."""
    check_parameter_names(deployment, parameters)
    check_parameter_types(deployment.name, deployment.parameter_schema, parameters)


def check_parameter_names(deployment: Deployment, parameters: Mapping[str, Any]) -> None:
    """Unknown or missing parameters."""
    problems = []
    if not deployment.accepts_any_parameter:
        unknown = sorted(set(parameters) - set(deployment.parameter_names))
        if unknown:
            problems.append(
                f"unknown parameter(s) {', '.join(unknown)}; the flow takes "
                f"{', '.join(deployment.parameter_names) or 'no parameters'}"
            )
    missing = sorted(set(deployment.required_parameters) - set(parameters))
    if missing:
        problems.append(f"missing required parameter(s) {', '.join(missing)}")
    if problems:
        raise ParameterValidationError(f"Deployment {deployment.name!r}: {'; '.join(problems)}.")


def schedule_flow_run(
    platform: Platform,
    deployment: Deployment,
    *,
    scheduled_time: datetime,
    parameters: Mapping[str, Any] | None = None,
    flow_run_name: str | None = None,
    tags: Sequence[str] = (),
    idempotency_key: str | None = None,
    auto_scheduled: bool = False,
    sending: bool = False,
) -> tuple[FlowRun, bool]:
    """Create the run in state Scheduled (one conditional put). Returns it and whether
    it was created now (False: the idempotency key had made it already).

    `sending`: the caller sends the run's message right after (`enqueue(...,
    recorded=True)`), so the item is created with `enqueued_at` and no write follows the
    send (an update of the run would rewrite its item and its `by_state` entry). If the
    caller dies in between, the run turns Late 15 s after its start and the scheduler's
    orphan pass sends it then (`scheduler._unsent`)."""
    merged = {**deployment.parameters, **(parameters or {})}
    check_parameters(deployment, merged)
    backend = platform.services.backend
    run_id = (
        flow_run_id_for(deployment.name, idempotency_key, pool=deployment.work_pool)
        if idempotency_key
        else new_flow_run_id(deployment.work_pool)
    )
    state = Scheduled(scheduled_time=scheduled_time.isoformat())
    run = FlowRun(
        id=run_id,
        name=flow_run_name or generate_run_name(),
        flow_name=deployment.flow_name,
        flow_version=deployment.version,
        parameters=merged,
        tags=tuple(dict.fromkeys((*deployment.tags, *tags))),
        deployment_name=deployment.name,
        work_pool_name=deployment.work_pool,
        work_queue_name=deployment.work_queue,
        idempotency_key=idempotency_key,
        expected_start_time=scheduled_time,
        auto_scheduled=auto_scheduled,
        created=platform.services.clock.now(),
        state=state,
        version=1,
    )
    if sending:
        run.enqueued_at = run.created
    state.details["flow_run_id"] = run_id
    try:
        backend.create_flow_run(run)
    except ConflictError:
        return backend.read_flow_run(run_id), False
    if idempotency_key:
        # One read per run created (not per existing slot); a hit happens only for
        # runs made before the upgrade: the new copy goes, the earlier run stays.
        earlier = _made_before_ids_carried_pools(backend, deployment.name, idempotency_key)
        if earlier is not None:
            backend.delete_flow_run(run_id, only_in=StateType.SCHEDULED)
            return earlier, False
    return run, True


def enqueue(
    platform: Platform, run: FlowRun, *, now: datetime | None = None, recorded: bool = False
) -> None:
    """Send the run's message, delayed until its start (at most 15 minutes ahead), then
    record `enqueued_at` on the run, unless `recorded` (it was created with it:
    `schedule_flow_run(sending=True)`). Raises NotInPoolNamespace, sending nothing, for a
    run whose id is not its pool's."""
    problem = namespace_problem(run)
    if problem is not None:
        raise NotInPoolNamespace(problem)
    now = now or platform.services.clock.now()
    delay = 0.0
    if run.expected_start_time is not None:
        delay = (run.expected_start_time - now).total_seconds()
    try:
        platform.queues.send(
            run.work_pool_name or "default",
            run.work_queue_name or "default",
            FlowRunMessage(
                flow_run_id=run.id, deployment=run.deployment_name, attempt=run.run_count + 1
            ),
            delay_seconds=delay,
        )
    except Exception:
        if recorded:
            # Not sent after all: a run without `enqueued_at` is sent by the next tick's
            # orphan pass, without waiting for it to turn Late.
            platform.services.backend.update_flow_run(run.id, enqueued_at=None)
        raise
    if not recorded:
        platform.services.backend.update_flow_run(run.id, enqueued_at=now)


def schedule_and_send(
    platform: Platform,
    deployment: Deployment,
    *,
    scheduled_time: datetime,
    **fields: Any,
) -> tuple[FlowRun, bool]:
    """`schedule_flow_run`, then its message: a run created now is written with its send
    recorded (`sending=True`, no update after the send); one that existed already is
    sent only if it never was. `fields` are `schedule_flow_run`'s."""
    run, created = schedule_flow_run(
        platform, deployment, scheduled_time=scheduled_time, sending=True, **fields
    )
    if created or run.enqueued_at is None:
        enqueue(platform, run, recorded=created)
    return run, created


def run_deployment(
    name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    scheduled_time: datetime | None = None,
    flow_run_name: str | None = None,
    tags: Sequence[str] = (),
    idempotency_key: str | None = None,
    timeout: float | None = None,
    poll_interval: float = 1.0,
) -> FlowRun:
    """Create a run of a deployment and wait for it (as Prefect's `run_deployment`).

    `timeout=0` returns at once; `None` waits until the run is final; otherwise waits at
    most that many seconds and returns the run in whatever state it is.
    """
    platform = get_platform()
    deployment = platform.deployments.get(name)
    clock = platform.services.clock
    run, _ = schedule_and_send(
        platform,
        deployment,
        scheduled_time=scheduled_time or clock.now(),
        parameters=parameters,
        flow_run_name=flow_run_name,
        tags=tags,
        idempotency_key=idempotency_key,
    )
    return wait_for_flow_run(run.id, timeout=timeout, poll_interval=poll_interval)


def wait_for_flow_run(
    flow_run_id: str, *, timeout: float | None = None, poll_interval: float = 1.0
) -> FlowRun:
    platform = get_platform()
    clock = platform.services.clock
    backend = platform.services.backend
    started = clock.now()
    run = backend.read_flow_run(flow_run_id)
    while not (run.state is not None and run.state.is_final()):
        if timeout is not None and (clock.now() - started).total_seconds() >= timeout:
            break
        clock.sleep(poll_interval)
        run = backend.read_flow_run(flow_run_id)
    return run


def retry_flow_run(
    flow_run_id: str, *, platform: Platform | None = None, from_scratch: bool = False
) -> FlowRun:
    """Run a finished run of a deployment again, as its next attempt (forced back to
    Scheduled, then sent to its work queue). The attempt replays the task runs earlier
    attempts completed, unless `from_scratch` (then their waits and inputs are forgotten
    too)."""
    platform = platform or get_platform()
    backend = platform.services.backend
    run = backend.read_flow_run(flow_run_id)
    if run.deployment_name is None:
        raise InvalidTransitionError(
            f"Flow run {flow_run_id} did not come from a deployment; call the flow again instead."
        )
    if run.state is None or not run.state.is_final():
        raise InvalidTransitionError(
            f"Flow run {run.name!r} is {run.state!r}; only a finished run can be retried."
        )
    now = platform.services.clock.now()
    if from_scratch:
        backend.update_flow_run(flow_run_id, replay_since=run.run_count + 1)
        for record in backend.run_inputs.list_inputs(flow_run_id):
            backend.run_inputs.delete(flow_run_id, record.key)
    backend.set_flow_run_state(
        flow_run_id,
        AwaitingRetry("Retried by an operator.", scheduled_time=now.isoformat()),
        force=True,
    )
    run = backend.read_flow_run(flow_run_id)
    run.expected_start_time = now
    enqueue(platform, run, now=now)
    return backend.read_flow_run(flow_run_id)
