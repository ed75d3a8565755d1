"""`strato concurrency-limit create|ls|inspect|delete`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from stratoflow.cli.common import one_line_errors, out, print_json

concurrency_limit_app = typer.Typer(
    help="Global and tag concurrency limits (name a tag limit `tag:<tag>`).", no_args_is_help=True
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _row(limit: Any) -> dict[str, Any]:
    return {
        "name": limit.name,
        "limit": limit.limit,
        "active": limit.active,
        "slot_decay_per_second": limit.slot_decay_per_second,
        "leases": len(getattr(limit, "leases", ()) or ()),
    }


@concurrency_limit_app.command("create")
def create(
    name: str,
    limit: Annotated[int, typer.Argument(min=1, help="How many slots.")],
    slot_decay_per_second: Annotated[
        float, typer.Option(min=0, help="Make it a rate limit: slots decay at this rate.")
    ] = 0.0,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it switched off.")] = False,
) -> None:
    """Create a concurrency limit (e.g. `strato concurrency-limit create tag:db 3`)."""
    from stratoflow.concurrency import create_concurrency_limit

    with one_line_errors():
        created = create_concurrency_limit(
            name, limit, slot_decay_per_second=slot_decay_per_second, active=not inactive
        )
    out.print(f"Created concurrency limit {created.name} with {created.limit} slot(s).")


@concurrency_limit_app.command("ls")
def list_limits(as_json: JsonOption = False) -> None:
    """List concurrency limits."""
    from stratoflow.concurrency import list_concurrency_limits

    with one_line_errors():
        limits = [_row(limit) for limit in list_concurrency_limits()]
    if as_json:
        print_json(limits)
        return
    table = Table(title="Concurrency limits")
    for column in ("name", "limit", "active", "decay/s", "held leases"):
        table.add_column(column)
    for row in limits:
        table.add_row(
            str(row["name"]),
            str(row["limit"]),
            "yes" if row["active"] else "no",
            str(row["slot_decay_per_second"] or "-"),
            str(row["leases"]),
        )
    out.print(table)


@concurrency_limit_app.command("inspect")
def inspect_limit(name: str, as_json: JsonOption = False) -> None:
    """One concurrency limit."""
    from stratoflow.concurrency import read_concurrency_limit

    with one_line_errors():
        document = _row(read_concurrency_limit(name))
    if as_json:
        print_json(document)
    else:
        out.print_json(data=document)


@concurrency_limit_app.command("delete")
def delete(name: str) -> None:
    """Delete a concurrency limit."""
    from stratoflow.concurrency import delete_concurrency_limit

    with one_line_errors():
        delete_concurrency_limit(name)
    out.print(f"Deleted concurrency limit {name}.")
