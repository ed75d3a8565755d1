"""The task worker's loop: long-poll the task queue, run up to `limit` runs at once."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from stratoflow.backends.aws.backend import AwsBackend
from stratoflow.background.queue import TaskQueue
from stratoflow.background.worker import NEEDS_AWS, TaskWorker
from stratoflow.context import Services, get_services
from stratoflow.exceptions import OptionError
from stratoflow.settings import get_settings
from stratoflow.tasks import Task

logger = logging.getLogger("stratoflow.task_worker")

VISIBILITY_SECONDS = 120
"""A message stays hidden this long after it is received; it is deleted as soon as its
run is claimed (a later copy finds the run claimed and is dropped)."""


def build_worker(
    tasks: Iterable[Task[..., Any]], services: Services | None = None, *, name: str | None = None
) -> TaskWorker:
    services = services or get_services()
    backend = services.backend
    if not isinstance(backend, AwsBackend):
        raise OptionError(NEEDS_AWS)
    queue = TaskQueue(backend.clients.sqs, get_settings().queue_prefix)
    return TaskWorker(tasks, services, queue, name=name or f"task-worker@{socket.gethostname()}")


def poll(
    worker: TaskWorker,
    *,
    limit: int = 10,
    once: bool = False,
    wait_seconds: int = 20,
    visibility_seconds: int = VISIBILITY_SECONDS,
    stop: threading.Event | None = None,
) -> int:
    """Run the served tasks' runs until `stop` is set (with `once`: until the queue has
    nothing for it and no run is in progress, since a run waiting for its `wait_for` runs
    sends its message again). Returns how many messages were processed.

    A message this worker received but did not claim (it was killed first, or its long
    poll was still open when it died) is received again `visibility_seconds` later."""
    if limit < 1:
        raise OptionError(f"limit must be at least 1, got {limit}.")
    stop = stop or threading.Event()
    processed = 0
    with ThreadPoolExecutor(limit, thread_name_prefix="stratoflow-task-worker") as pool:
        running: set[Future[None]] = set()
        while not stop.is_set():
            for finished in [f for f in running if f.done()]:
                running.discard(finished)
                _log_failure(finished)
            free = limit - len(running)
            if free <= 0:
                stop.wait(0.05)
                continue
            messages = worker.queue.receive(
                max_messages=free,
                wait_seconds=0 if once else wait_seconds,
                visibility=visibility_seconds,
            )
            if not messages and once:
                if not running:
                    break  # nothing queued and nothing running that could send more
                stop.wait(0.05)
            for message in messages:
                running.add(pool.submit(_process, worker, message))
                processed += 1
        for future in running:
            future.exception()
            _log_failure(future)
    return processed


def _log_failure(future: Future[None]) -> None:
    """A message whose processing raised is not deleted: SQS delivers it again, and after
    MAX_RECEIVE_COUNT deliveries moves it to the DLQ."""
    exc = future.exception()
    if exc is not None:
        logger.error("Processing a task queue message failed", exc_info=exc)


def _process(worker: TaskWorker, message: dict[str, Any]) -> None:
    body = message.get("Body", "")
    handle = message["ReceiptHandle"]
    deleted = False

    def delete() -> None:
        nonlocal deleted
        if not deleted:
            worker.queue.delete(handle)
            deleted = True

    worker.handle(body, on_claimed=delete)
    delete()  # refused (dead-lettered), dropped or sent again: this copy is done
