"""The Lambda task worker: the task queue's SQS event source runs each background task
run in the invocation (functions/task_worker/handler.py is the thin Lambda side).

It serves the tasks of the modules named by STRATOFLOW_TASK_MODULES, which are part of
its code bundle (`-c task_modules=...` at `cdk deploy`): code is never fetched at run
time, so a message cannot make it run anything else."""

from __future__ import annotations

import logging

from stratoflow.background.loading import load_tasks
from stratoflow.background.polling import build_worker
from stratoflow.background.worker import TaskWorker
from stratoflow.exceptions import OptionError, StratoflowError
from stratoflow.settings import Settings
from stratoflow.states import State

logger = logging.getLogger("stratoflow.task_worker")


class HandBack(StratoflowError):
    """Too little time is left to start this run: let SQS deliver it again."""


def worker_from_settings(settings: Settings) -> TaskWorker:
    modules = [name.strip() for name in settings.task_modules.split(",") if name.strip()]
    if not modules:
        raise OptionError(
            "STRATOFLOW_TASK_MODULES names no module: deploy with "
            "`-c task_modules=my_package.tasks` (modules included in the Lambda code)."
        )
    return build_worker(load_tasks(modules), name="lambda-task-worker")


def process_task_record(
    worker: TaskWorker,
    body: str,
    *,
    queue_name: str,
    remaining_seconds: float,
    min_remaining_seconds: float,
) -> State | None:
    """Run one SQS record's task run. A record from another queue than the task queue
    (a misconfigured event source) is dead-lettered unread; HandBack when less than
    `min_remaining_seconds` are left (before anything is claimed)."""
    if queue_name != worker.queue.name:
        reason = (
            f"a task run message arrived from SQS queue {queue_name!r}, not the task queue "
            f"{worker.queue.name!r}: the task worker's event source is misconfigured"
        )
        logger.warning("Refusing a record: %s", reason)
        worker.queue.dead_letter(body, reason)
        return None
    if remaining_seconds < min_remaining_seconds:
        raise HandBack(
            f"Only {remaining_seconds:.0f} s left in this invocation (under "
            f"{min_remaining_seconds:.0f} s): the task run goes back to its queue."
        )
    return worker.handle(body)
