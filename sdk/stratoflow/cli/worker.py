"""`strato worker start` and `strato worker ls`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from stratoflow.cli.common import one_line_errors, out, print_json

worker_app = typer.Typer(help="Run and list on-prem workers (pollers).", no_args_is_help=True)


@worker_app.command("start")
def start(
    pool: Annotated[str, typer.Option("--pool", "-p", help="Work pool to poll.")] = "default",
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", help="Work queue(s) of the pool to poll (default: all)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-l", min=1, help="Flow runs this worker runs at once.")
    ] = 4,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Worker name (default: <host>-<pid>).")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is in the queues now, then exit.")
    ] = False,
    wait_seconds: Annotated[
        int,
        typer.Option(
            "--wait-seconds", min=0, max=20, help="Long-poll wait of each receive (0 to 20 s)."
        ),
    ] = 20,
) -> None:
    """Poll a work pool's queues and run each flow run in its own process.

    Outbound HTTPS only. SIGTERM or Ctrl-C: stop receiving, let running flow runs finish
    for STRATOFLOW_WORKER_SHUTDOWN_GRACE_SECONDS, then hand the rest back to their queue
    (a second Ctrl-C hands them back at once).
    """
    from stratoflow.platform import get_platform
    from stratoflow.workers.poller import Poller, PollerOptions

    with _worker_logging(), one_line_errors():
        platform = get_platform()
        options = PollerOptions(
            pool=pool,
            queues=tuple(queue or ()),
            limit=limit,
            name=name,
            wait_seconds=min(wait_seconds, 1) if once else wait_seconds,
            shutdown_grace=platform.settings.worker_shutdown_grace_seconds,
        )
        poller = Poller(platform, options)
        with poller.signal_handlers():
            poller.run(until=poller.idle if once else None)


@worker_app.command("ls")
def ls(
    pool: Annotated[str | None, typer.Option("--pool", "-p", help="Only this work pool.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Workers that sent a heartbeat in the last five minutes (alive: in the last minute)."""
    from stratoflow.platform import get_platform
    from stratoflow.workers.registry import list_workers

    with one_line_errors():
        platform = get_platform()
        if pool is not None:
            platform.work_pools.get(pool)  # a clear error for an unknown pool
        workers = list_workers(platform, pool)
    if as_json:
        print_json([w.as_dict() for w in workers])
        return
    if not workers:
        out.print("No worker has sent a heartbeat in the last five minutes.")
        return
    now = platform.services.clock.now()
    table = Table(title="Workers")
    for column in ("name", "pool", "queues", "running", "last seen", "alive"):
        table.add_column(column)
    for worker in workers:
        table.add_row(
            worker.name,
            worker.pool,
            ", ".join(worker.queues),
            f"{worker.running}/{worker.limit}",
            _ago(worker.last_seen, now),
            "[green]yes[/]" if worker.alive else "[red]no[/]",
        )
    out.print(table)


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max((now - moment).total_seconds(), 0)
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    return f"{seconds / 60:.0f}m ago"


@contextlib.contextmanager
def _worker_logging() -> Iterator[None]:
    """The worker's own log lines (what it receives, starts, cancels) on stderr."""
    logger = logging.getLogger("stratoflow.workers")
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s worker: %(message)s", "%H:%M:%S")
    )
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
