"""Crash and zombie detection, on every scheduler tick (on by default, unlike Prefect's
opt-in zombie automation).

- Running, but no heartbeat for `zombie_after_seconds`: the process running it died.
  It is marked Crashed, and retried (Crashed → AwaitingRetry, re-enqueued) when the
  flow has retries left.
- Pending (claimed) for `pending_timeout_seconds`: the worker died between claim and
  start. It is rescheduled and re-enqueued.
- Cancelling for `cancelling_grace_seconds`: nobody is left to finish the cancellation.
  It becomes Cancelled.
- Scheduled (or Late) and unclaimed, its message sent longer ago than the queues keep
  messages (`QUEUE_RETENTION_SECONDS`, 14 days: no worker polled the queue, or it was
  paused, that long): SQS deleted the message unreceived, so nothing would ever claim
  the run. It is sent again. A run whose message is still there may get a second one
  (a worker handed it back since); that is harmless, as the claim is conditional and
  the worker deletes a message whose run is claimed already.
- Paused past its pause's timeout (`pause_flow_run(timeout=)`): nobody resumed it in
  time. It fails, as in Prefect (a paused run without a timeout waits forever).
- Crashed with its retry decided (whoever found the crash: this sweep, a poller, the ECS
  stopped-task rule) but not made, because that one died between the two writes: it is
  retried.

Only runs executed by workers are swept (they have a deployment and heartbeat); a flow
called directly in a process keeps no heartbeat and is left alone. Every change is
conditional on the version the sweep read, so a run that moved meanwhile is not touched.

Background task runs (`my_task.delay()`) have a sweep of their own, run here too: those
whose task worker's lease ended are crashed (and retried) or cancelled
(stratoflow.background.sweep).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stratoflow import resources
from stratoflow.backends.base import Backend
from stratoflow.background.queue import TaskQueue
from stratoflow.background.sweep import TaskRunSweepReport, sweep_task_runs
from stratoflow.deployments.runs import enqueue
from stratoflow.durable.event_waits import ON_TIMEOUT, deliver_response
from stratoflow.durable.pauses import pause_expired
from stratoflow.exceptions import ConflictError, InvalidTransitionError
from stratoflow.models import FlowRun
from stratoflow.platform import Platform
from stratoflow.states import (
    AwaitingRetry,
    Cancelled,
    Crashed,
    Failed,
    Scheduled,
    State,
    StateType,
)
from stratoflow.workers.ownership import NotInPoolNamespace, namespace_problem

logger = logging.getLogger(__name__)

RETRY_GRACE = timedelta(seconds=10)
"""A crash whose decided retry was not made this long after it is retried by the sweep."""
RETRY_WINDOW = timedelta(minutes=15)
"""How far back the sweep looks for such crashes (it runs every minute)."""
MESSAGE_EXPIRED_AFTER = timedelta(seconds=resources.QUEUE_RETENTION_SECONDS, hours=1)
"""A run's message sent this long ago is gone: the queues' retention, and an hour so
that the sweep does not race SQS deleting it."""


@dataclass
class SweepReport:
    crashed: int = 0
    retried: int = 0
    rescheduled: int = 0
    cancelled: int = 0
    resent: int = 0
    timed_out: int = 0
    task_runs: TaskRunSweepReport = field(default_factory=TaskRunSweepReport)
    """The background task runs' sweep."""


def sweep(platform: Platform, now: datetime) -> SweepReport:
    settings = platform.settings
    backend = platform.services.backend
    report = SweepReport()
    zombie_before = now - timedelta(seconds=settings.zombie_after_seconds)
    for run in _zombies(backend, zombie_before):
        _crash(platform, run, now, report)
    pending_before = now - timedelta(seconds=settings.pending_timeout_seconds)
    for run in backend.list_flow_runs_by_state(StateType.PENDING, until=pending_before):
        if run.deployment_name is None or not _sendable(run):
            continue
        rescheduled = Scheduled(
            "Rescheduled: its worker claimed it but never started it.",
            name="Rescheduled",
            scheduled_time=now.isoformat(),
        )
        if _move(platform, run, rescheduled):
            enqueue(platform, backend.read_flow_run(run.id), now=now)
            report.rescheduled += 1
    grace_before = now - timedelta(seconds=settings.cancelling_grace_seconds)
    for run in backend.list_flow_runs_by_state(StateType.CANCELLING, until=grace_before):
        if _move(platform, run, Cancelled("Cancelled after the cancellation grace period.")):
            report.cancelled += 1
    for run in backend.list_flow_runs_by_state(
        StateType.CRASHED, since=now - RETRY_WINDOW, until=now - RETRY_GRACE
    ):
        if run.deployment_name is not None and retry_after_crash(platform, run, now):
            report.retried += 1
    for run in backend.list_flow_runs_by_state(StateType.PAUSED, until=now):
        if run.deployment_name is None:
            continue  # paused in its own process, which times the pause out itself
        if not pause_expired(run, now):
            continue
        assert run.state is not None
        if run.state.details.get(ON_TIMEOUT) == "resume":  # wait_for_event: goes on, None
            key = str(run.state.details.get("pause_key"))
            if deliver_response(platform, run, key, "null"):
                report.timed_out += 1
        elif _move(platform, run, _pause_timed_out(run)):
            report.timed_out += 1
    report.resent = resend_expired(platform, now)
    backend = platform.backend
    report.task_runs = sweep_task_runs(
        backend, TaskQueue(backend.clients.sqs, settings.queue_prefix), now
    )
    return report


def _pause_timed_out(run: FlowRun) -> State:
    assert run.state is not None
    key = run.state.details.get("pause_key", "its pause")
    return Failed(
        f"The flow run was not resumed before its pause at {key!r} timed out "
        f"({run.state.details.get('pause_timeout')})."
    )


def resend_expired(platform: Platform, now: datetime) -> int:
    """Send again the message of each Scheduled or Late run whose message SQS deleted
    unreceived (sent more than MESSAGE_EXPIRED_AFTER ago). Sending updates
    `enqueued_at`, so a run is sent again at most once per retention."""
    expired_before = now - MESSAGE_EXPIRED_AFTER
    resent = 0
    # The index orders by state time. A Scheduled state is written just before its
    # message is sent, and Late 15 s after the run is due, at most ~15 min (the longest
    # SQS delay) after the send: both fall before `expired_before` + 1 h. (A run due far
    # later than its send turns Late later, and is found once that is old enough.)
    for run in platform.services.backend.list_flow_runs_by_state(
        StateType.SCHEDULED, until=expired_before + timedelta(hours=1)
    ):
        if run.deployment_name is None or run.enqueued_at is None:
            continue  # not a worker's run; or never sent, which the scheduler tick sends
        if run.enqueued_at <= expired_before:
            try:
                enqueue(platform, run, now=now)
            except NotInPoolNamespace as exc:
                logger.warning("Not sent again: %s", exc)
                continue
            resent += 1
    return resent


def _sendable(run: FlowRun) -> bool:
    """Whether the run may be sent to its pool's queue; a run outside its pool's namespace
    (an earlier version's, or planted by another pool's worker) is left as it is, with a
    warning, before any state is moved (docs/security.md)."""
    problem = namespace_problem(run)
    if problem is not None:
        logger.warning("Left alone: %s", problem)
    return problem is None


def _zombies(backend: Backend, zombie_before: datetime) -> list[FlowRun]:
    """Running runs of workers with no sign of life since `zombie_before`: the time they
    entered Running (their first proof of life), then their heartbeat items, read only for
    the runs whose state is older than that (one batch read, not one per run)."""
    quiet = []
    for run in backend.list_flow_runs_by_state(StateType.RUNNING):
        if run.deployment_name is None:
            continue
        last_alive = run.heartbeat or _entered(run)  # a beat on the item: written before
        if last_alive is not None and last_alive < zombie_before:
            quiet.append(run)
    beats = backend.flow_run_heartbeats([run.id for run in quiet]) if quiet else {}
    return [run for run in quiet if not (run.id in beats and beats[run.id] >= zombie_before)]


def _entered(run: FlowRun) -> datetime | None:
    return run.state.timestamp if run.state is not None else None


def _move(platform: Platform, run: FlowRun, state: State, *, force: bool = False) -> bool:
    try:
        platform.services.backend.set_flow_run_state(
            run.id, state, expected_version=run.version, force=force
        )
    except (ConflictError, InvalidTransitionError):
        return False
    return True


def _crash(platform: Platform, run: FlowRun, now: datetime, report: SweepReport) -> None:
    seconds = platform.settings.zombie_after_seconds
    crashed = crash_state(
        run, f"No heartbeat for more than {seconds:g} s: the process running it stopped."
    )
    if not _move(platform, run, crashed):
        return
    report.crashed += 1
    if retry_after_crash(platform, run, now):
        report.retried += 1


def crash_state(run: FlowRun, message: str) -> State:
    """The Crashed state for `run` (as read before the crash), with the decision to retry
    it when its flow has retries left (known once an attempt started)."""
    if _retry_left(run):
        return Crashed(message, retry=True)
    return Crashed(message)


def _retry_left(run: FlowRun) -> bool:
    """An attempt started and its flow has a retry left (continuations, such as a resume
    after a suspension, are not retries)."""
    return run.run_count >= 1 and run.retries_used < run.retries


def retry_after_crash(platform: Platform, run: FlowRun, now: datetime) -> bool:
    """A run marked Crashed with its retry decided (`crash_state`) goes on to its next
    attempt: AwaitingRetry, sent to its work queue. Whoever found the crash (this sweep,
    the poller that saw its process die, the ECS stopped-task rule) retries it at once;
    if it died before, the sweep does it later. Of several tries, one wins."""
    if not _retry_left(run) or not _sendable(run):
        return False
    # Crashed is final; going on to a retry needs force, and the history keeps both.
    backend = platform.services.backend
    current = backend.read_flow_run(run.id)
    state = current.state
    if state is None or state.type is not StateType.CRASHED or not state.details.get("retry"):
        return False
    retry = AwaitingRetry("Retrying after a crash.", scheduled_time=now.isoformat())
    if not _move(platform, current, retry, force=True):
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
