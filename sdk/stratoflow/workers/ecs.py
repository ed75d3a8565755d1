"""The ECS dispatcher: a work queue's SQS event source claims each run and starts a
Fargate task whose container runs `strato flow-run execute <id>`
(functions/ecs_dispatcher/handler.py is the thin Lambda side).

Where the task runs comes from the dispatcher's environment:

    STRATOFLOW_ECS_CLUSTER            cluster name or ARN
    STRATOFLOW_ECS_TASK_DEFINITION    family[:revision] or ARN
    STRATOFLOW_ECS_SUBNETS            comma-separated subnet ids
    STRATOFLOW_ECS_SECURITY_GROUPS    comma-separated security group ids (optional)
    STRATOFLOW_ECS_CONTAINER          container to override (default "flow-run")
    STRATOFLOW_ECS_ASSIGN_PUBLIC_IP   ENABLED or DISABLED (default DISABLED)

A deployment's `job_variables` may set `env` (a mapping of environment variables for
the container), `cpu` and `memory` (the task's Fargate size).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stratoflow.crashes import mark_crashed
from stratoflow.deployments.models import Deployment
from stratoflow.deployments.store import UnknownDeployment
from stratoflow.exceptions import StratoflowError
from stratoflow.models import FlowRun
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.platform import Platform
from stratoflow.states import Cancelled, StateType
from stratoflow.workers.triage import Drop, SendOn, admit, send_on

logger = logging.getLogger("stratoflow.workers")

EXECUTE = ("strato", "flow-run", "execute")
"""The container command, followed by the flow run id and FROM_QUEUE_OPTION."""
FROM_QUEUE_OPTION = "--from-queue"


class EcsConfigError(StratoflowError):
    """The dispatcher's environment does not say where to run tasks."""


@dataclass(frozen=True)
class EcsConfig:
    cluster: str
    task_definition: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...] = ()
    container: str = "flow-run"
    assign_public_ip: str = "DISABLED"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EcsConfig:
        env = os.environ if env is None else env
        missing = [
            name
            for name in (
                "STRATOFLOW_ECS_CLUSTER",
                "STRATOFLOW_ECS_TASK_DEFINITION",
                "STRATOFLOW_ECS_SUBNETS",
            )
            if not env.get(name)
        ]
        if missing:
            raise EcsConfigError(f"The ECS dispatcher needs {', '.join(missing)} to be set.")
        return cls(
            cluster=env["STRATOFLOW_ECS_CLUSTER"],
            task_definition=env["STRATOFLOW_ECS_TASK_DEFINITION"],
            subnets=_split(env["STRATOFLOW_ECS_SUBNETS"]),
            security_groups=_split(env.get("STRATOFLOW_ECS_SECURITY_GROUPS", "")),
            container=env.get("STRATOFLOW_ECS_CONTAINER") or "flow-run",
            assign_public_ip=env.get("STRATOFLOW_ECS_ASSIGN_PUBLIC_IP") or "DISABLED",
        )


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


class EcsDispatcher:
    def __init__(self, platform: Platform, ecs_client: Any, config: EcsConfig) -> None:
        self.platform = platform
        self.ecs = ecs_client
        self.config = config
        self.backend = platform.services.backend

    def dispatch(self, body: str, *, queue_name: str) -> str | None:
        """Claim the record's run and start its task. Returns the task ARN, or None when
        nothing was started (malformed, or a run of another pool or queue than
        `queue_name`'s: dead-lettered; stale or not due; or run_task failed, and the run
        was marked Crashed)."""
        decision = admit(
            self.platform, body, queue_name=queue_name, now=self.platform.services.clock.now()
        )
        if isinstance(decision, Drop):
            return None
        if isinstance(decision, SendOn):
            send_on(self.platform, decision.run, decision.message, decision.delay_seconds)
            return None
        run = claim_flow_run(
            self.backend,
            decision.run.id,
            worker="ecs-dispatcher",
            now=self.platform.services.clock.now(),
            read=decision.run,  # the triage's read: the claim is conditional on its version
        )
        if run is None:
            logger.info("Flow run %s was claimed by another worker", decision.run.id)
            return None
        return self._run_task(run, queue_name)

    def _run_task(self, run: FlowRun, queue_name: str) -> str | None:
        request = self.run_task_request(run, self._deployment(run), queue_name=queue_name)
        try:
            response = self.ecs.run_task(**request)
        except (ClientError, BotoCoreError) as exc:
            self._crash(run, f"ECS could not start the flow run's task: {exc}")
            return None
        failures = response.get("failures") or []
        tasks = response.get("tasks") or []
        if failures or not tasks:
            reasons = "; ".join(
                f"{f.get('arn', '')} {f.get('reason', '')} {f.get('detail', '')}".strip()
                for f in failures
            )
            self._crash(run, f"ECS could not start the flow run's task: {reasons or 'no task'}")
            return None
        arn = str(tasks[0]["taskArn"])
        self.backend.update_flow_run(run.id, infrastructure_id=arn)
        logger.info("Flow run %s runs in ECS task %s", run.id, arn)
        return arn

    def run_task_request(
        self, run: FlowRun, deployment: Deployment | None, *, queue_name: str
    ) -> dict[str, Any]:
        variables = deployment.job_variables if deployment is not None else {}
        container: dict[str, Any] = {
            "name": self.config.container,
            # The container checks again that the run is this queue's before running it.
            "command": [*EXECUTE, run.id, FROM_QUEUE_OPTION, queue_name],
        }
        env = variables.get("env") or {}
        if env:
            container["environment"] = [
                {"name": str(k), "value": str(v)} for k, v in sorted(env.items())
            ]
        overrides: dict[str, Any] = {"containerOverrides": [container]}
        for size in ("cpu", "memory"):
            if variables.get(size) is not None:
                overrides[size] = str(variables[size])
        network: dict[str, Any] = {
            "subnets": list(self.config.subnets),
            "assignPublicIp": self.config.assign_public_ip,
        }
        if self.config.security_groups:
            network["securityGroups"] = list(self.config.security_groups)
        return {
            "cluster": self.config.cluster,
            "taskDefinition": self.config.task_definition,
            "launchType": "FARGATE",
            "count": 1,
            "startedBy": "stratoflow",
            "networkConfiguration": {"awsvpcConfiguration": network},
            "overrides": overrides,
        }

    def _deployment(self, run: FlowRun) -> Deployment | None:
        if run.deployment_name is None:
            return None
        try:
            return self.platform.deployments.get(run.deployment_name)
        except UnknownDeployment:
            return None

    def _crash(self, run: FlowRun, reason: str) -> None:
        logger.error("Flow run %s: %s", run.id, reason)
        mark_crashed(self.platform, run.id, reason)


def flow_run_id_of_task(detail: Mapping[str, Any]) -> str | None:
    """The flow run id in an ECS task's container overrides (`strato flow-run execute
    <id>`), or None when the task is not a flow run's."""
    overrides = detail.get("overrides") or {}
    for container in overrides.get("containerOverrides") or []:
        command = list(container.get("command") or [])
        for index in range(len(command) - len(EXECUTE)):
            if tuple(command[index : index + len(EXECUTE)]) == EXECUTE:
                return str(command[index + len(EXECUTE)])
    return None


def on_task_stopped(platform: Platform, detail: Mapping[str, Any]) -> str | None:
    """A stopped task whose flow run is not final: mark the run Crashed with the stop
    reason (Cancelled when it was Cancelling). Returns the run's new state name, or None
    when there was nothing to do."""
    if detail.get("lastStatus") != "STOPPED":
        return None
    run_id = flow_run_id_of_task(detail)
    if run_id is None:
        return None
    backend = platform.services.backend
    try:
        run = backend.read_flow_run(run_id)
    except StratoflowError:
        return None
    task_arn = detail.get("taskArn")
    if run.infrastructure_id and task_arn and run.infrastructure_id != task_arn:
        return None  # an older task of a run that was dispatched again
    state = run.state
    if state is None or state.is_final() or state.type in (StateType.SCHEDULED, StateType.PAUSED):
        return None  # ended, or handed back for a retry
    reason = _stop_reason(detail)
    if state.type is StateType.CANCELLING:
        return backend.set_flow_run_state(
            run_id, Cancelled(f"The ECS task stopped: {reason}")
        ).state.name
    logger.error("Flow run %s crashed: its ECS task stopped (%s)", run_id, reason)
    crashed = mark_crashed(
        platform, run_id, f"The flow run's ECS task stopped before the run ended: {reason}"
    )
    return crashed.name if crashed else None


def _stop_reason(detail: Mapping[str, Any]) -> str:
    parts = [str(detail.get("stoppedReason") or detail.get("stopCode") or "no reason given")]
    for container in detail.get("containers") or []:
        if container.get("exitCode") is not None:
            parts.append(f"container {container.get('name')} exit code {container['exitCode']}")
        elif container.get("reason"):
            parts.append(f"container {container.get('name')}: {container['reason']}")
    return "; ".join(parts)
