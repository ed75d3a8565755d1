"""Task workers for background tasks, as Prefect's `prefect.task_worker`:

    from stratoflow.task_worker import serve
    serve(add, multiply)            # runs what `add.delay(...)` / `multiply.delay(...)` send

`strato task-worker start module:task ...` does the same from the shell; in AWS the
Lambda task worker does it (docs/background-tasks.md).
"""

from __future__ import annotations

import threading
from typing import Any

from stratoflow.background.polling import build_worker, poll
from stratoflow.background.worker import TaskWorker
from stratoflow.tasks import Task

__all__ = ["TaskWorker", "serve"]


def serve(
    *tasks: Task[..., Any],
    limit: int = 10,
    once: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Run the runs of `tasks` from the task queue, up to `limit` at once, until `stop`
    is set or the process is interrupted (with `once`: until the queue has nothing
    more). Returns how many messages were processed."""
    return poll(build_worker(tasks), limit=limit, once=once, stop=stop)
