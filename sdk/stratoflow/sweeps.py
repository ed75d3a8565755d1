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
from stratoflow.crashes import crash_state, move_if_unchanged, retry_after_crash, sendable
from stratoflow.deployments.runs import enqueue
from stratoflow.durable.event_waits import ON_TIMEOUT, deliver_response
from stratoflow.durable.pauses import pause_expired
from stratoflow.models import FlowRun
from stratoflow.platform import Platform
from stratoflow.states import (
    Cancelled,
    Failed,
    Scheduled,
    State,
    StateType,
)
from stratoflow.workers.ownership import NotInPoolNamespace

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
        if run.deployment_name is None or not sendable(run):
            continue
        rescheduled = Scheduled(
            "Rescheduled: its worker claimed it but never started it.",
            name="Rescheduled",
            scheduled_time=now.isoformat(),
        )
        if move_if_unchanged(platform, run, rescheduled):
            enqueue(platform, backend.read_flow_run(run.id), now=now)
            report.rescheduled += 1
    grace_before = now - timedelta(seconds=settings.cancelling_grace_seconds)
    for run in backend.list_flow_runs_by_state(StateType.CANCELLING, until=grace_before):
        if move_if_unchanged(
            platform, run, Cancelled("Cancelled after the cancellation grace period.")
        ):
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
        elif move_if_unchanged(platform, run, _pause_timed_out(run)):
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


def _crash(platform: Platform, run: FlowRun, now: datetime, report: SweepReport) -> None:
    seconds = platform.settings.zombie_after_seconds
    crashed = crash_state(
        run, f"No heartbeat for more than {seconds:g} s: the process running it stopped."
    )
    if not move_if_unchanged(platform, run, crashed):
        return
    report.crashed += 1
    if retry_after_crash(platform, run, now):
        report.retried += 1
