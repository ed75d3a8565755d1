"""`prefect.client.schemas.objects` under its Prefect path: the objects the client
returns, which are stratoflow's own records under Prefect's names.

They differ from Prefect's client schemas where stratoflow stores something else
(docs/sdk.md, "Client"): ids are text; a flow run names its deployment
(`deployment_name`) and flow (`flow_name`) instead of holding their ids; a deployment's
name is its id; `WorkPool` is the pool as declared in `stratoflow.yaml`, with its queues.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from stratoflow.concurrency.store import ConcurrencyLimit
from stratoflow.deployments.models import Deployment, WorkPoolSpec, WorkQueueSpec
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.records import ArtifactRecord, VariableRecord
from stratoflow.states import State, StateType

__all__ = [
    "Artifact",
    "ConcurrencyLimit",
    "Deployment",
    "FlowRun",
    "Log",
    "State",
    "StateType",
    "TaskRun",
    "Variable",
    "WorkPool",
    "WorkQueue",
]

Artifact = ArtifactRecord
Log = LogEntry
Variable = VariableRecord
"""A stored variable (`stratoflow.variables.Variable` is the one flows use, as in Prefect)."""
WorkPool = WorkPoolSpec


class WorkQueue(BaseModel):
    """A queue of a work pool, with its pool's name (stratoflow keeps queues inside their
    pool's definition, as `WorkQueueSpec`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    work_pool_name: str
    priority: int
    concurrency_limit: int | None = None
    is_paused: bool = False
    description: str | None = None

    @classmethod
    def of(cls, pool: WorkPoolSpec, queue: WorkQueueSpec) -> WorkQueue:
        return cls(
            name=queue.name,
            work_pool_name=pool.name,
            priority=queue.priority,
            concurrency_limit=queue.concurrency_limit,
            is_paused=queue.paused,
            description=queue.description,
        )
