"""Claiming a flow run: Scheduled → Pending with a condition on the version read.

Of any number of workers claiming the same run (duplicate deliveries, two pollers),
exactly one gets it; the others are told to drop their message.
"""

from __future__ import annotations

from datetime import datetime

from stratoflow.backends.base import Backend
from stratoflow.exceptions import ConflictError, InvalidTransitionError, ObjectNotFound
from stratoflow.models import FlowRun
from stratoflow.states import Pending, StateType

CLAIM_ATTEMPTS = 5


def claim_flow_run(
    backend: Backend,
    flow_run_id: str,
    *,
    worker: str | None = None,
    now: datetime | None = None,
    read: FlowRun | None = None,
) -> FlowRun | None:
    """The claimed run, or None when it is gone, not Scheduled, or claimed by another.

    `read`: the caller's own read of the run (a worker's triage), claimed without reading
    it again: the claim is conditional on the version read, so a stale copy only costs a
    conflict and a fresh read. The run returned is that copy as written (no read either).

    A run that changed between the read and the write but is still Scheduled (marked
    Late, or its previous attempt's process wrote it once more) is claimed again.
    """
    known = read if read is not None and read.id == flow_run_id else None
    for _ in range(CLAIM_ATTEMPTS):
        if known is not None:
            run, known = known, None
        else:
            try:
                run = backend.read_flow_run(flow_run_id)
            except ObjectNotFound:
                return None
        # The version before the state: a backend may hand out its live record (the memory
        # backend does), which another claimer can change meanwhile. A state read after
        # the version is as new or newer, and a newer one makes the write below conflict.
        seen_version = run.version
        if run.state is None or run.state.type is not StateType.SCHEDULED:
            return None
        claimed = Pending(f"Claimed by {worker}." if worker else None)
        if now is not None:
            claimed.timestamp = now  # the sweep compares it with the same clock
        if worker:
            claimed.details["worker"] = worker
        try:
            backend.set_flow_run_state(
                flow_run_id, claimed, expected_version=seen_version, seen=run
            )
        except ConflictError:
            # Claimed by another worker, or still ours to claim: the backend read the run
            # again to find out and left that read in `run` (`seen`); else read it here.
            known = run if run.version != seen_version else None
            continue
        except InvalidTransitionError:
            return None
        return run  # as written: the write was conditional on the version it was read at
    return None
