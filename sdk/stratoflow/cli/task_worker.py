"""`strato task-worker start`: serve background tasks (Prefect's `prefect task serve`)."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer

from stratoflow._signals import stop_on_signals
from stratoflow.cli.common import one_line_errors, out

task_worker_app = typer.Typer(
    help="Run task workers for background tasks (`my_task.delay(...)`).", no_args_is_help=True
)


@task_worker_app.command("start")
def start(
    tasks: Annotated[
        list[str],
        typer.Argument(
            help="Tasks to serve: `module:task`, `path/to/file.py:task`, or a module (all "
            "of its tasks)."
        ),
    ],
    limit: Annotated[
        int, typer.Option("--limit", "-l", min=1, help="Task runs this worker runs at once.")
    ] = 10,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is in the task queue now, then exit.")
    ] = False,
) -> None:
    """Take the served tasks' runs from the installation's task queue and run them.

    Every task worker of an installation must serve every task sent to it: a message for
    another task is dead-lettered with the reason. SIGTERM or Ctrl-C: stop receiving
    (after the current long poll, at most 20 s), finish the runs in progress, exit 0.
    """
    from stratoflow.background.loading import load_tasks
    from stratoflow.background.polling import build_worker, poll

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with one_line_errors():
        worker = build_worker(load_tasks(tasks))
        names = ", ".join(f"{t.name} ({key})" for key, t in worker.tasks.items())
        out.print(f"Serving {names} from {worker.queue.name}")
        stop = threading.Event()
        with stop_on_signals(stop.set):  # SIGTERM or Ctrl-C: stop after the current poll
            processed = poll(worker, limit=limit, once=once, stop=stop)
        if stop.is_set():
            out.print(f"Stopped after {processed} message(s).")
            return
        out.print(f"Processed {processed} message(s).")
