"""What a worker does with a flow run message before claiming it, the same for all three
workers: refuse it (malformed, or a run of another pool or queue: dead-lettered), drop it
(stale or duplicate), send it on (not due yet), or go ahead.

SQS delivers at least once and delays a message by at most 15 minutes, so a message may
arrive twice, after its run ended, or before its run is due (a retry delay or a start
time more than 15 minutes ahead). Deciding here, from the run's stored state, is what
makes execution exactly-once on top of that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from stratoflow.exceptions import ConflictError, InvalidTransitionError, ObjectNotFound
from stratoflow.models import FlowRun
from stratoflow.platform import Platform
from stratoflow.states import Cancelled, StateType
from stratoflow.workers.messages import FlowRunMessage, MalformedMessage, parse_message
from stratoflow.workers.ownership import foreign_run_reason, run_pool_and_queue
from stratoflow.workers.queues import PREFETCH_LEAD_SECONDS

logger = logging.getLogger("stratoflow.workers")

EARLY_TOLERANCE_SECONDS = PREFETCH_LEAD_SECONDS + 1.0
"""A message this early (or less) is held until its run is due rather than sent on."""


@dataclass(frozen=True)
class Drop:
    """Nothing to run: delete the message."""

    reason: str


@dataclass(frozen=True)
class Refuse(Drop):
    """Never to be run from this queue (malformed, or a run of another pool or queue):
    the message goes to the queue's dead-letter queue (`admit` sends it), then is deleted.
    The run, if any, is left as it was."""


@dataclass(frozen=True)
class SendOn:
    """The run is not due yet: send the message again with this delay, delete this one."""

    run: FlowRun
    delay_seconds: float
    message: FlowRunMessage


@dataclass(frozen=True)
class Ready:
    """The run is Scheduled and due: claim it."""

    run: FlowRun
    message: FlowRunMessage


Decision = Drop | SendOn | Ready


def due_time(run: FlowRun) -> datetime | None:
    """When a Scheduled run should start: its state's `scheduled_time` (a retry's), else
    the run's expected start."""
    if run.state is not None:
        value = run.state.details.get("scheduled_time")
        if isinstance(value, datetime):
            return value
        if isinstance(value, str) and value:
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
    return run.expected_start_time


def admit(platform: Platform, body: str, *, queue_name: str, now: datetime) -> Decision:
    """Parse and triage a message received from the SQS queue `queue_name`. A Refuse
    has been dead-lettered with its reason (and logged), a Drop logged: delete either."""
    try:
        message = parse_message(body)
    except MalformedMessage as exc:
        logger.error("Moving a message of %s to its dead-letter queue: %s", queue_name, exc)
        platform.queues.dead_letter_from(queue_name, body, str(exc))
        return Refuse(str(exc))
    decision = triage(platform, message, now, queue_name=queue_name)
    if isinstance(decision, Refuse):
        logger.warning(
            "Refusing a message of %s; moving it to its dead-letter queue: %s",
            queue_name,
            decision.reason,
        )
        platform.queues.dead_letter_from(queue_name, body, decision.reason)
    elif isinstance(decision, Drop):
        logger.info("Dropping the message of flow run %s: %s", message.flow_run_id, decision.reason)
    return decision


def triage(
    platform: Platform, message: FlowRunMessage, now: datetime, *, queue_name: str
) -> Decision:
    """What to do with `message`, received from the SQS queue `queue_name`.

    The run is read eventually consistent first (half the read units), and only a Ready
    decision is taken from that read: a stale Ready is harmless, since the claim that
    follows is a write conditional on the version read (a stale copy costs a conflict
    and a fresh read, never a second claim), and the pool and queue a run belongs to
    never change. Anything else (a run not found yet, not Scheduled, not due, another
    queue's) may be an artefact of staleness, so it is decided on a consistent read."""
    backend = platform.services.backend
    try:
        seen = backend.read_flow_run(message.flow_run_id, consistent=False)
    except ObjectNotFound:
        seen = None
    if seen is not None:
        decision = _decide(platform, message, seen, now, queue_name=queue_name)
        if isinstance(decision, Ready):
            return decision
    try:
        run = backend.read_flow_run(message.flow_run_id)
    except ObjectNotFound:
        return Drop(f"flow run {message.flow_run_id} does not exist (deleted, or never created)")
    decision = _decide(platform, message, run, now, queue_name=queue_name)
    if not isinstance(decision, _Cancel):
        return decision
    # Cancelled while it waited in its queue: no process runs it, so end it here.
    try:
        backend.set_flow_run_state(
            run.id,
            Cancelled("Cancelled before a worker started it."),
            expected_version=run.version,
            seen=run,
        )
    except (ConflictError, InvalidTransitionError):
        return Drop(f"flow run {run.id} changed while it was being cancelled")
    return Drop(f"flow run {run.id} was cancelled before it started")


@dataclass(frozen=True)
class _Cancel:
    """Cancelling, and no worker ever started this attempt: to be ended Cancelled."""


def _decide(
    platform: Platform, message: FlowRunMessage, run: FlowRun, now: datetime, *, queue_name: str
) -> Decision | _Cancel:
    """The decision for `run` as read (no writes)."""
    run_id = run.id
    # First, before anything may write to the run: is it this queue's at all?
    foreign = foreign_run_reason(
        run, prefix=platform.queues.prefix, queue_name=queue_name, message=message
    )
    if foreign is not None:
        return Refuse(foreign)
    state = run.state
    if state is None:
        return Drop(f"flow run {run_id} has no state")
    if state.is_final():
        return Drop(f"flow run {run_id} is already {state.name}")
    if state.type is StateType.CANCELLING and _never_started_this_attempt(run):
        return _Cancel()
    if state.type is not StateType.SCHEDULED:
        return Drop(f"flow run {run_id} is {state.name}: another worker has it")
    due = due_time(run)
    if due is not None:
        ahead = (due - now).total_seconds()
        if ahead > EARLY_TOLERANCE_SECONDS:
            return SendOn(run, ahead, message)
    return Ready(run, message)


def _never_started_this_attempt(run: FlowRun) -> bool:
    """Cancelling straight from Scheduled (or Paused): no worker is running it."""
    if not run.state_history:
        return True
    return run.state_history[-1].type in (StateType.SCHEDULED, StateType.PAUSED)


def send_on(platform: Platform, run: FlowRun, message: FlowRunMessage, delay: float) -> None:
    """Send the message again to its run's work queue, `delay` seconds (at most 15 min)."""
    pool, queue = run_pool_and_queue(run)
    platform.queues.send(pool, queue, message, delay_seconds=delay)


def seconds_until_due(run: FlowRun, now: datetime) -> float:
    """How long a Ready run should still be held (0 when it is due)."""
    due = due_time(run)
    return 0.0 if due is None else max(0.0, (due - now).total_seconds())
