"""`strato work-pool ls|inspect` and `strato work-queue ls|pause|resume`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from stratoflow.cli.common import one_line_errors, out, print_json

work_pool_app = typer.Typer(help="Inspect work pools.", no_args_is_help=True)
work_queue_app = typer.Typer(help="List, pause and resume work queues.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@work_pool_app.command("ls")
def list_pools(as_json: JsonOption = False) -> None:
    """Work pools and their queues."""
    from stratoflow.platform import get_platform

    with one_line_errors():
        pools = get_platform().work_pools.list()
    if as_json:
        print_json([p.model_dump(mode="json") for p in pools])
        return
    table = Table(title="Work pools")
    for column in ("pool", "type", "concurrency limit", "queues"):
        table.add_column(column)
    for pool in pools:
        table.add_row(
            pool.name,
            pool.type,
            str(pool.concurrency_limit or "-"),
            ", ".join(q.name + (" (paused)" if q.paused else "") for q in pool.by_priority()),
        )
    out.print(table)


@work_pool_app.command("inspect")
def inspect_pool(name: str, as_json: JsonOption = False) -> None:
    """One work pool, with its queues' SQS URLs and depths."""
    from stratoflow.platform import get_platform

    with one_line_errors():
        platform = get_platform()
        pool = platform.work_pools.get(name)
        queues = []
        for queue in pool.by_priority():
            depth = platform.queues.depth(pool.name, queue.name)
            queues.append(
                {
                    **queue.model_dump(mode="json"),
                    "url": platform.queues.url(pool.name, queue.name),
                    "waiting": depth.waiting,
                    "in_flight": depth.in_flight,
                    "delayed": depth.delayed,
                    "dead_letters": depth.dead_letters,
                }
            )
    document = {**pool.model_dump(mode="json"), "queues": queues}
    if as_json:
        print_json(document)
    else:
        out.print_json(data=document)


@work_queue_app.command("ls")
def list_queues(
    pool: Annotated[str | None, typer.Option(help="Only this pool's queues.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Work queues by pool, highest priority first."""
    from stratoflow.platform import get_platform

    with one_line_errors():
        platform = get_platform()
        pools = [platform.work_pools.get(pool)] if pool else platform.work_pools.list()
    rows = [
        {
            "pool": p.name,
            "queue": q.name,
            "priority": q.priority,
            "paused": q.paused,
            "concurrency_limit": q.concurrency_limit,
        }
        for p in pools
        for q in p.by_priority()
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Work queues")
    for column in ("pool", "queue", "priority", "paused", "concurrency limit"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["pool"]),
            str(row["queue"]),
            str(row["priority"]),
            "yes" if row["paused"] else "no",
            str(row["concurrency_limit"] or "-"),
        )
    out.print(table)


def _set_paused(queue: str, pool: str, paused: bool) -> None:
    from stratoflow.platform import get_platform

    with one_line_errors():
        platform = get_platform()
        try:
            platform.work_pools.set_queue_paused(pool, queue, paused)
        except KeyError as exc:
            from stratoflow.exceptions import ObjectNotFound

            raise ObjectNotFound(str(exc.args[0])) from None
    out.print(f"Work queue {pool}/{queue} is {'paused' if paused else 'resumed'}.")


@work_queue_app.command("pause")
def pause(
    queue: str, pool: Annotated[str, typer.Option(help="The queue's work pool.")] = "default"
) -> None:
    """Pause a work queue: workers stop taking its runs, which wait."""
    _set_paused(queue, pool, True)


@work_queue_app.command("resume")
def resume(
    queue: str, pool: Annotated[str, typer.Option(help="The queue's work pool.")] = "default"
) -> None:
    """Resume a paused work queue."""
    _set_paused(queue, pool, False)
