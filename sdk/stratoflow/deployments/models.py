"""Deployments and work pools as stored and as written in `stratoflow.yaml`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stratoflow.exceptions import ObjectNotFound
from stratoflow.resources import DEFAULT_WORK_POOL, DEFAULT_WORK_QUEUE
from stratoflow.schedules import DeploymentSchedule

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]


class UnknownPoolQueue(ObjectNotFound):
    """A work pool has no queue of that name."""


class UnknownSchedule(ObjectNotFound):
    """A deployment has no schedule with that key."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BundleInfo(_Model):
    """Where a deployment's code is: a content-addressed zip in the code bucket."""

    bucket: str
    key: str
    sha256: str


class WorkQueueSpec(_Model):
    name: Name = DEFAULT_WORK_QUEUE
    priority: int = Field(default=1, ge=0, description="Lower numbers are drained first.")
    concurrency_limit: int | None = Field(default=None, ge=1)
    paused: bool = False
    description: str | None = None


class WorkPoolSpec(_Model):
    name: Name = DEFAULT_WORK_POOL
    type: Literal["process", "lambda", "ecs"] = "process"
    concurrency_limit: int | None = Field(default=None, ge=1)
    description: str | None = None
    queues: tuple[WorkQueueSpec, ...] = (WorkQueueSpec(),)

    @model_validator(mode="after")
    def _unique_queues(self) -> WorkPoolSpec:
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ValueError(f"work pool {self.name!r} lists a queue twice: {names}")
        return self

    def queue(self, name: str) -> WorkQueueSpec:
        for queue in self.queues:
            if queue.name == name:
                return queue
        known = ", ".join(q.name for q in self.queues)
        raise UnknownPoolQueue(f"Work pool {self.name!r} has no queue {name!r} (queues: {known}).")

    def by_priority(self) -> list[WorkQueueSpec]:
        return sorted(self.queues, key=lambda q: (q.priority, q.name))


class DeploymentSpec(_Model):
    """A deployment as written in `stratoflow.yaml` (before its code is uploaded)."""

    name: Name
    entrypoint: str = Field(pattern=r"^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$")
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: tuple[DeploymentSchedule, ...] = ()
    paused: bool = False
    work_pool: Name = DEFAULT_WORK_POOL
    work_queue: Name = DEFAULT_WORK_QUEUE
    concurrency_limit: int | None = Field(default=None, ge=1)
    collision_strategy: Literal["enqueue", "cancel-new"] = "enqueue"
    tags: tuple[str, ...] = ()
    version: str | None = None
    description: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    pickle_results: bool = Field(
        default=False,
        description="Let results that JSON cannot hold be stored with cloudpickle (signed "
        "with the work pool's key; docs/security.md). Off: such results stay in the run's "
        "process.",
    )
    replay: bool = Field(
        default=True,
        description="A run's later attempts (a retry, a resume, a wake-up) reuse the task "
        "runs earlier attempts completed (docs/durability.md). Off: every attempt runs "
        "every task.",
    )

    @field_validator("schedules", mode="before")
    @classmethod
    def _no_schedules(cls, value: Any) -> Any:
        return () if value is None else value

    @model_validator(mode="after")
    def _unique_schedule_keys(self) -> DeploymentSpec:
        keys = [s.key for s in self.schedules]
        if len(set(keys)) != len(keys):
            raise ValueError(
                f"deployment {self.name!r} has two schedules with the same slug or definition"
            )
        return self


class Deployment(DeploymentSpec):
    """A deployment as stored: the spec plus what deploying it recorded."""

    flow_name: str
    bundle: BundleInfo
    parameter_names: tuple[str, ...] = ()
    required_parameters: tuple[str, ...] = ()
    accepts_any_parameter: bool = False
    parameter_schema: dict[str, Any] | None = None
    """The JSON Schema of the flow's parameters (from its type hints): a run's parameters
    are checked against it before the run is created. None: only names are checked."""
    created: datetime
    updated: datetime

    def schedule(self, key: str) -> DeploymentSchedule:
        for schedule in self.schedules:
            if schedule.key == key:
                return schedule
        known = ", ".join(s.key for s in self.schedules) or "none"
        raise UnknownSchedule(
            f"Deployment {self.name!r} has no schedule {key!r} (schedules: {known})."
        )


class ProjectConfig(_Model):
    """`stratoflow.yaml`: a project's deployments and work pools."""

    name: str | None = None
    work_pools: tuple[WorkPoolSpec, ...] = ()
    deployments: tuple[DeploymentSpec, ...] = ()

    @field_validator("work_pools", mode="before")
    @classmethod
    def _pools(cls, value: Any) -> Any:
        # Accept a mapping {pool name: pool} as well as a list.
        if isinstance(value, dict):
            return tuple({"name": name, **(spec or {})} for name, spec in value.items())
        return value
