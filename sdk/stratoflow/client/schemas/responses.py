"""`prefect.client.schemas.responses` under its Prefect path: the result of setting a
run's state (`OrchestrationResult`), and Prefect's response names for stratoflow's
deployment and concurrency limit records."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from stratoflow.concurrency.store import ConcurrencyLimit
from stratoflow.deployments.models import Deployment
from stratoflow.states import State

__all__ = [
    "DeploymentResponse",
    "GlobalConcurrencyLimitResponse",
    "OrchestrationResult",
    "SetStateStatus",
    "StateAcceptDetails",
    "StateRejectDetails",
]

DeploymentResponse = Deployment
GlobalConcurrencyLimitResponse = ConcurrencyLimit


class SetStateStatus(enum.StrEnum):
    """ACCEPT: the state was set. REJECT: the transition is not allowed (the run keeps
    its state; `details.reason` says why). stratoflow never answers ABORT or WAIT."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    ABORT = "ABORT"
    WAIT = "WAIT"


@dataclass(frozen=True, slots=True)
class StateAcceptDetails:
    type: str = "accept_details"


@dataclass(frozen=True, slots=True)
class StateRejectDetails:
    reason: str | None = None
    type: str = "reject_details"


@dataclass(frozen=True, slots=True)
class OrchestrationResult:
    """`state`: the run's state after the call (the one set, or the one it kept)."""

    state: State | None
    status: SetStateStatus
    details: StateAcceptDetails | StateRejectDetails = field(default_factory=StateAcceptDetails)
