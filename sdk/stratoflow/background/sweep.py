"""The crash sweep of background task runs, run by every scheduler tick next to the flow
run sweeps (stratoflow.sweeps).

It reads what is due, not the task runs: the `by_state` partition TASKRUNSDUE up to now
(`resources.TASK_RUNS_DUE_PARTITION`, sorted by `sweep_due`), oldest first, at most
`limit` runs a tick. A run is in it only while there is something to watch, and leaves it
when it is final. A due run is:

- held by a worker whose lease ended (the worker stopped renewing it: process killed,
  Lambda timed out, host lost): settled as stratoflow.background.leases says — Cancelled
  if it was Cancelling; with retries left, Crashed then AwaitingRetry, its message sent to
  the task queue (the task worker that gets it runs the next attempt); else Crashed;
- waiting for the worker of its retry (AwaitingRetry, held by none): its message is sent
  again — whoever settled it died before sending it (`SEND_GRACE` later), or the message
  was kept so long unreceived that SQS deleted it (`MESSAGE_EXPIRED_AFTER` later).

Every write is conditional on the version and heartbeat the sweep read (from the index,
which may lag: a stale copy fails its condition and is looked at again next tick), so a
run that moved, or whose lease was renewed, meanwhile is left alone; of the sweep and a
worker that receives the run's message again, exactly one settles it.

Index items are untrusted (a worker may write any item with any index attribute): an
item is used only when its own key is the background task run its content names
(`OwnItems`), and a run that cannot be read or sent is skipped with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from stratoflow import resources
from stratoflow.backends.aws.backend import AwsBackend
from stratoflow.backends.aws.held_task_runs import postpone, write_states
from stratoflow.backends.aws.items import task_run_from_item, to_attribute
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.background.leases import crash_states, is_held, lease_ended
from stratoflow.background.messages import TaskRunMessage
from stratoflow.background.queue import TaskQueue
from stratoflow.exceptions import ConflictError, InvalidTransitionError
from stratoflow.models import TaskRun
from stratoflow.states import StateType
from stratoflow.workers.queues import UnknownWorkQueue

logger = logging.getLogger(__name__)

SWEEP_LIMIT = 50
"""Due runs settled per tick at most; the rest are due at the next tick (oldest first)."""
MAX_PAGES = 4
"""Query pages read per tick at most: items that are not due runs of ours (planted by a
worker) are skipped, but may not make a tick read without end."""
SEND_GRACE = timedelta(minutes=1)
"""A retry whose message was not sent (its sender died) is sent this much later."""
MESSAGE_EXPIRED_AFTER = timedelta(seconds=resources.QUEUE_RETENTION_SECONDS, hours=1)
"""A retry's message sent this long ago and still unreceived is gone: sent again."""


@dataclass
class TaskRunSweepReport:
    crashed: int = 0
    retried: int = 0
    """Crashed runs sent back to the task queue for their next attempt."""
    cancelled: int = 0
    resent: int = 0
    """Retries whose message was sent again."""
    errors: list[str] = field(default_factory=list)


def sweep_task_runs(
    backend: AwsBackend, queue: TaskQueue, now: datetime, *, limit: int = SWEEP_LIMIT
) -> TaskRunSweepReport:
    report = TaskRunSweepReport()
    for run in due_task_runs(backend, now, limit=limit):
        try:
            _settle(backend, queue, run, now, report)
        except (ConflictError, InvalidTransitionError):
            continue  # moved, or its lease renewed, since the index listed it
    return report


def due_task_runs(backend: AwsBackend, now: datetime, *, limit: int) -> list[TaskRun]:
    """The background task runs whose `sweep_due` is not after `now`, oldest first."""
    index = resources.BY_STATE
    query: dict[str, Any] = {
        "TableName": backend.table,
        "IndexName": index.name,
        "KeyConditionExpression": "#p = :p AND #s <= :until",
        "ExpressionAttributeNames": {"#p": index.partition_key, "#s": index.sort_key},
        "ExpressionAttributeValues": {
            ":p": to_attribute(resources.TASK_RUNS_DUE_PARTITION),
            ":until": to_attribute(f"{now.astimezone(UTC).isoformat()}#~"),
        },
        "Limit": limit,
    }
    runs: list[TaskRun] = []
    with OwnItems("background task run", _own_key) as own:
        for _ in range(MAX_PAGES):
            page = backend.dynamodb.query(**query)
            for item in own(page.get("Items", [])):
                try:
                    runs.append(task_run_from_item(item, backend.results))
                except (KeyError, TypeError, ValueError) as exc:
                    logger.warning("Skipped an unreadable background task run item: %r", exc)
                if len(runs) >= limit:
                    return runs
            start = page.get("LastEvaluatedKey")
            if start is None:
                break
            query["ExclusiveStartKey"] = start
    return runs


def _own_key(item: Any) -> dict[str, str]:
    return resources.task_run_key(None, string_attribute(item, "id"))


def _settle(
    backend: AwsBackend, queue: TaskQueue, run: TaskRun, now: datetime, report: TaskRunSweepReport
) -> None:
    if lease_ended(run, now):
        states, retry = crash_states(run, "the crash sweep")
        if not retry:
            write_states(
                backend.dynamodb,
                backend.table,
                run,
                states,
                heartbeat=run.heartbeat,
                sweep_due=None,
            )
            if states[-1].type is StateType.CANCELLED:
                report.cancelled += 1
            else:
                report.crashed += 1
            return
        # Released (no heartbeat: held by none), due again if the send below never happens.
        write_states(
            backend.dynamodb,
            backend.table,
            run,
            states,
            heartbeat=None,
            sweep_due=now + SEND_GRACE,
            force=True,
        )
        report.crashed += 1
        if _send(backend, queue, run, now, report):
            report.retried += 1
        return
    state = run.state
    if state is not None and state.type is StateType.SCHEDULED and not is_held(run):
        if _send(backend, queue, run, now, report):
            report.resent += 1
        return
    # Listed as due, but neither held with its lease ended nor waiting: only a write other
    # than stratoflow's makes such an item (final, or a lease that ends later than its
    # index entry says). Taken out of the partition, so that it is not read every tick.
    logger.warning(
        "Task run %s was listed as due but is %s: taken out of the due list", run.id, state
    )
    _unindex(backend, run)


def _unindex(backend: AwsBackend, run: TaskRun) -> None:
    index = resources.BY_STATE
    try:
        backend.dynamodb.update_item(
            TableName=backend.table,
            Key={k: to_attribute(v) for k, v in resources.task_run_key(None, run.id).items()},
            UpdateExpression="REMOVE #p, #s",
            ConditionExpression="#version = :seen AND #p = :due",
            ExpressionAttributeNames={
                "#p": index.partition_key,
                "#s": index.sort_key,
                "#version": "version",
            },
            ExpressionAttributeValues={
                ":seen": to_attribute(run.version),
                ":due": to_attribute(resources.TASK_RUNS_DUE_PARTITION),
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def _send(
    backend: AwsBackend, queue: TaskQueue, run: TaskRun, now: datetime, report: TaskRunSweepReport
) -> bool:
    """Send the run's message, then move its `sweep_due` to when it counts as expired."""
    try:
        message = TaskRunMessage(task_run_id=run.id, task_key=run.task_key)
    except ValidationError:
        logger.warning("Task run %s: its task key cannot travel in a message", run.id)
        return False
    try:
        queue.send(message)
    except (ClientError, BotoCoreError, UnknownWorkQueue) as exc:
        report.errors.append(f"task run {run.id} not sent to {queue.name!r}: {exc}")
        return False
    postpone(backend.dynamodb, backend.table, run, now + MESSAGE_EXPIRED_AFTER)
    return True
