"""`strato deploy` and `flow.deploy()`: bundle the code, check the flow, store deployments."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stratoflow.deployments.bundle_build import build_bundle
from stratoflow.deployments.config import ConfigError, load_project
from stratoflow.deployments.models import (
    BundleInfo,
    Deployment,
    DeploymentSpec,
    WorkPoolSpec,
)
from stratoflow.deployments.parameter_schema import DEPLOY_HINT, check_parameter_types
from stratoflow.deployments.runs import check_parameter_names
from stratoflow.deployments.store import UnknownDeployment
from stratoflow.entrypoints import load_flow
from stratoflow.exceptions import ParameterValidationError
from stratoflow.flows import Flow
from stratoflow.platform import Platform, get_platform
from stratoflow.states import StateType

_P = inspect.Parameter


@dataclass(frozen=True)
class DeployResult:
    deployment: Deployment
    bundle_uploaded: bool
    created: bool
    removed_future_runs: int


def deploy_project(
    project_dir: Path, *, names: Sequence[str] = (), platform: Platform | None = None
) -> list[DeployResult]:
    """Deploy the deployments of `project_dir/stratoflow.yaml` (or only `names`)."""
    config = load_project(project_dir)  # a wrong path is reported before a missing backend
    platform = platform or get_platform()
    specs = list(config.deployments)
    if names:
        known = {s.name for s in specs}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UnknownDeployment(
                f"stratoflow.yaml has no deployment {', '.join(map(repr, unknown))}; "
                f"it has {', '.join(sorted(known)) or 'none'}."
            )
        specs = [s for s in specs if s.name in names]
    for pool in config.work_pools:
        save_work_pool(platform, pool)
    return deploy_specs(platform, project_dir, specs)


def save_work_pool(platform: Platform, pool: WorkPoolSpec) -> None:
    platform.work_pools.put(pool)
    for queue in pool.queues:
        platform.queues.url(pool.name, queue.name)  # a clear error if the queue is missing
    # The poller honours these limits (stratoflow.workers.slots).
    _sync_concurrency_limit(work_pool_limit_name(pool.name), pool.concurrency_limit)
    for queue in pool.queues:
        _sync_concurrency_limit(
            work_queue_limit_name(pool.name, queue.name), queue.concurrency_limit
        )


def deploy_specs(
    platform: Platform, project_dir: Path, specs: Iterable[DeploymentSpec]
) -> list[DeployResult]:
    project_dir = project_dir.resolve()
    specs = list(specs)
    flows = {spec.name: _check_flow(project_dir, spec) for spec in specs}
    for spec in specs:
        platform.work_pools.get(spec.work_pool).queue(spec.work_queue)
    bundle = build_bundle(project_dir)
    ref, uploaded = platform.bundles.upload(bundle)
    now = platform.services.clock.now()
    results = []
    for spec in specs:
        flow = flows[spec.name]
        try:
            previous: Deployment | None = platform.deployments.get(spec.name)
        except UnknownDeployment:
            previous = None
        deployment = Deployment(
            **spec.model_dump(),
            flow_name=flow.name,
            bundle=BundleInfo(bucket=ref.bucket, key=ref.key, sha256=ref.sha256),
            **_signature_facts(flow),
            created=previous.created if previous else now,
            updated=now,
        )
        if previous is not None and _same_definition(previous, deployment):
            # Nothing changed: no write, and its future runs (and the scheduler's marks,
            # which follow the stored definition) stay as they are.
            results.append(DeployResult(previous, uploaded, False, 0))
            continue
        platform.deployments.put(deployment)
        _sync_concurrency_limit(
            deployment_limit_name(deployment.name), deployment.concurrency_limit
        )
        removed = remove_future_runs(platform, deployment.name)
        results.append(DeployResult(deployment, uploaded, previous is None, removed))
    return results


def _same_definition(previous: Deployment, new: Deployment) -> bool:
    """Whether a redeploy changes nothing but the time it was made."""
    return previous.model_copy(update={"updated": new.updated}) == new


def _check_flow(project_dir: Path, spec: DeploymentSpec) -> Flow[..., Any]:
    """Load the flow from the project and check the deployment's parameters against it."""
    # Confined to the project as a worker confines it to the bundle: an entrypoint that
    # a worker would refuse (absolute, `..`, a symlink out) is refused now, not at run time.
    flow = load_flow(spec.entrypoint, root=project_dir)
    facts = _signature_facts(flow)
    probe = Deployment.model_construct(name=spec.name, **facts)
    # A run of the deployment may give the required parameters its defaults leave out
    # (`strato deployment run --param`); a schedule's runs get only the deployment's and
    # the schedule's parameters, so those must be complete.
    partial = Deployment.model_construct(name=spec.name, **{**facts, "required_parameters": ()})
    for label, parameters, checked in [("parameters", spec.parameters, partial)] + [
        (f"schedule {s.key!r} parameters", {**spec.parameters, **s.parameters}, probe)
        for s in spec.schedules
    ]:
        try:
            check_parameter_names(checked, parameters)
            if not (set(facts["required_parameters"]) - set(parameters)):
                flow.validate_parameters({**_defaults(flow), **parameters})
            # Runs check them, as JSON, against the schema: what pydantic would coerce
            # ("5" for an int) must be written with its JSON type here.
            check_parameter_types(
                spec.name, facts["parameter_schema"], parameters, hint=DEPLOY_HINT
            )
        except ParameterValidationError as exc:
            detail = str(exc).removeprefix(f"Deployment {spec.name!r}: ")
            raise ParameterValidationError(
                f"Deployment {spec.name!r} ({label}): {detail}"
            ) from None
    return flow


def _signature_facts(flow: Flow[..., Any]) -> dict[str, Any]:
    parameters = inspect.signature(flow.fn).parameters.values()
    return {
        "parameter_names": tuple(
            p.name for p in parameters if p.kind not in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD)
        ),
        "required_parameters": tuple(
            p.name
            for p in parameters
            if p.default is _P.empty and p.kind not in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD)
        ),
        "accepts_any_parameter": any(p.kind is _P.VAR_KEYWORD for p in parameters),
        "parameter_schema": flow.parameter_schema(),
    }


def _defaults(flow: Flow[..., Any]) -> dict[str, Any]:
    return {
        p.name: p.default
        for p in inspect.signature(flow.fn).parameters.values()
        if p.default is not _P.empty
    }


def _sync_concurrency_limit(name: str, limit: int | None) -> None:
    from stratoflow.concurrency import (
        create_concurrency_limit,
        delete_concurrency_limit,
        read_concurrency_limit,
        update_concurrency_limit,
    )
    from stratoflow.concurrency.errors import ConcurrencyLimitNotFound

    try:
        existing = read_concurrency_limit(name)
    except ConcurrencyLimitNotFound:
        existing = None
    if limit is None:
        if existing is not None:
            delete_concurrency_limit(name)
    elif existing is None:
        create_concurrency_limit(name, limit)
    elif existing.limit != limit:
        update_concurrency_limit(name, limit=limit)


def deployment_limit_name(deployment_name: str) -> str:
    return f"deployment:{deployment_name}"


def work_pool_limit_name(pool: str) -> str:
    return f"work-pool:{pool}"


def work_queue_limit_name(pool: str, queue: str) -> str:
    return f"work-queue:{pool}/{queue}"


def remove_future_runs(
    platform: Platform, deployment_name: str, *, schedule_key: str | None = None
) -> int:
    """Delete the deployment's scheduled, not yet started, auto-scheduled runs (of one
    schedule, when given); the scheduler recreates what still applies, with the same ids."""
    backend = platform.services.backend
    now = platform.services.clock.now()
    removed = 0
    # First: the next tick looks at every slot again, and recreates what still applies.
    platform.schedule_marks.forget(deployment_name)
    for run in backend.list_flow_runs_of_deployment(deployment_name):
        if not run.auto_scheduled or run.state is None:
            continue
        if run.state.type is not StateType.SCHEDULED or run.run_count > 0:
            continue
        if run.expected_start_time is not None and run.expected_start_time <= now:
            continue
        if schedule_key is not None and not (run.idempotency_key or "").startswith(
            f"{schedule_key}|"
        ):
            continue
        if backend.delete_flow_run(run.id, only_in=StateType.SCHEDULED):
            removed += 1
    return removed


def set_deployment_paused(name: str, paused: bool, *, platform: Platform | None = None) -> int:
    """Pause (removing its future runs) or resume a deployment; returns runs removed."""
    platform = platform or get_platform()
    deployment = platform.deployments.get(name)
    # `updated` changes with it: the scheduler's marks of the runs removed now are void.
    now = platform.services.clock.now()
    platform.deployments.put(deployment.model_copy(update={"paused": paused, "updated": now}))
    return remove_future_runs(platform, name) if paused else 0


def set_schedule_active(
    name: str, schedule_key: str, active: bool, *, platform: Platform | None = None
) -> int:
    platform = platform or get_platform()
    deployment = platform.deployments.get(name)
    target = deployment.schedule(schedule_key)
    schedules = tuple(
        s.model_copy(update={"active": active}) if s is target else s for s in deployment.schedules
    )
    now = platform.services.clock.now()  # as for a pause: the marks are void
    platform.deployments.put(deployment.model_copy(update={"schedules": schedules, "updated": now}))
    return remove_future_runs(platform, name, schedule_key=schedule_key) if not active else 0


def deploy_flow(
    flow: Flow[..., Any],
    name: str,
    *,
    project_dir: str | Path | None = None,
    platform: Platform | None = None,
    **options: Any,
) -> DeployResult:
    """`flow.deploy(name, ...)`: deploy one flow from Python.

    `project_dir` (default: the directory of the flow's file) is what gets bundled; the
    other options are those of a `stratoflow.yaml` deployment (parameters, schedules,
    work_pool, work_queue, concurrency_limit, collision_strategy, tags, version,
    description, job_variables, paused).
    """
    source = inspect.getsourcefile(flow.fn)
    if source is None:
        raise ConfigError(f"Flow {flow.name!r} has no source file to deploy from.")
    source_path = Path(source).resolve()
    root = Path(project_dir).resolve() if project_dir is not None else source_path.parent
    if not source_path.is_relative_to(root):
        raise ConfigError(
            f"Flow {flow.name!r} is defined in {source_path}, outside project_dir {root}."
        )
    entrypoint = f"{source_path.relative_to(root).as_posix()}:{flow.fn.__name__}"
    try:
        spec = DeploymentSpec.model_validate({"name": name, "entrypoint": entrypoint, **options})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"Deployment {name!r}: {problems}") from None
    return deploy_specs(platform or get_platform(), root, [spec])[0]
