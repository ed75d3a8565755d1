"""A flow run whose runner stopped before it ended: Crashed, then its next attempt.

Whoever finds the crash marks the run (`mark_crashed`): the poller that saw a run's process
die, the ECS dispatcher when a task stops or cannot start, the scheduler's sweep for a run
whose heartbeat stopped (sweeps.py). With retries left, the Crashed state records the
decision to retry (`crash_state`) and the run goes on to AwaitingRetry and its work queue
(`retry_after_crash`); if the finder dies between the two writes, the sweep retries it.

Apart from the sweep, so that the ECS dispatcher and the pollers load only this.
"""

from __future__ import annotations

import logging
from datetime import datetime

from stratoflow.deployments.runs import enqueue
from stratoflow.exceptions import ConflictError, InvalidTransitionError
from stratoflow.models import FlowRun
from stratoflow.platform import Platform
from stratoflow.states import AwaitingRetry, Crashed, State, StateType
from stratoflow.workers.ownership import namespace_problem

logger = logging.getLogger("stratoflow.sweeps")


def move_if_unchanged(
    platform: Platform, run: FlowRun, state: State, *, force: bool = False
) -> bool:
    """Move `run` to `state` if it is still at the version read (False: it moved meanwhile,
    or may not go there)."""
    try:
        platform.services.backend.set_flow_run_state(
            run.id, state, expected_version=run.version, force=force
        )
    except (ConflictError, InvalidTransitionError):
        return False
    return True


def sendable(run: FlowRun) -> bool:
    """Whether the run may be sent to its pool's queue; a run outside its pool's namespace
    (an earlier version's, or planted by another pool's worker) is left as it is, with a
    warning, before any state is moved (docs/security.md)."""
    problem = namespace_problem(run)
    if problem is not None:
        logger.warning("Left alone: %s", problem)
    return problem is None


def crash_state(run: FlowRun, message: str) -> State:
    """The Crashed state for `run` (as read before the crash), with the decision to retry
    it when its flow has retries left (known once an attempt started)."""
    if retry_left(run):
        return Crashed(message, retry=True)
    return Crashed(message)


def retry_left(run: FlowRun) -> bool:
    """An attempt started and its flow has a retry left (continuations, such as a resume
    after a suspension, are not retries)."""
    return run.run_count >= 1 and run.retries_used < run.retries


def retry_after_crash(platform: Platform, run: FlowRun, now: datetime) -> bool:
    """A run marked Crashed with its retry decided (`crash_state`) goes on to its next
    attempt: AwaitingRetry, sent to its work queue. Whoever found the crash (the sweep,
    the poller that saw its process die, the ECS stopped-task rule) retries it at once;
    if it died before, the sweep does it later. Of several tries, one wins."""
    if not retry_left(run) or not sendable(run):
        return False
    # Crashed is final; going on to a retry needs force, and the history keeps both.
    backend = platform.services.backend
    current = backend.read_flow_run(run.id)
    state = current.state
    if state is None or state.type is not StateType.CRASHED or not state.details.get("retry"):
        return False
    retry = AwaitingRetry("Retrying after a crash.", scheduled_time=now.isoformat())
    if not move_if_unchanged(platform, current, retry, force=True):
        return False
    enqueue(platform, backend.read_flow_run(run.id), now=now)
    return True


def mark_crashed(platform: Platform, flow_run_id: str, reason: str) -> State | None:
    """Mark a run Crashed when whatever ran it stopped before it was final; with retries
    left it then goes on to its next attempt, as after the crash sweep. Returns the
    Crashed state (None: the run was final already)."""
    backend = platform.services.backend
    run = backend.read_flow_run(flow_run_id)
    if run.state is None or run.state.is_final():
        return None
    crashed = backend.set_flow_run_state(flow_run_id, crash_state(run, reason)).state
    retry_after_crash(platform, run, platform.services.clock.now())
    return crashed
