"""`strato automation ...`: create automations from files, list, inspect, pause, resume
and delete them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stratoflow.cli.common import one_line_errors, out, print_json

automation_app = typer.Typer(
    help="Automations: when events match a trigger, run actions.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
INSPECT_FIRINGS = 20
NameOrId = Annotated[str, typer.Argument(help="The automation's name or id.")]


@automation_app.command("create")
def create(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="A YAML or JSON file: one automation or a list.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Create the automations of a file (names must be new)."""
    from stratoflow.automations.api import automation_store
    from stratoflow.automations.loading import load_automations
    from stratoflow.automations.store import DuplicateAutomationName, duplicate_message

    with one_line_errors():
        automations = load_automations(file)
        store = automation_store()
        existing = {record.name for record in store.list()}
        taken = [a.name for a in automations if a.name in existing]
        if taken:
            raise DuplicateAutomationName(duplicate_message(taken[0]))
        created = [store.create(automation) for automation in automations]
    if as_json:
        print_json([{"id": r.id, "name": r.name} for r in created])
        return
    for record in created:
        out.print(f"Created automation [bold]{record.name}[/] ({record.id})", highlight=False)


@automation_app.command("ls")
def list_automations(as_json: JsonOption = False) -> None:
    """List automations."""
    from stratoflow.automations.api import automation_store
    from stratoflow.automations.describe import (
        action_types,
        automation_document,
        describe_trigger,
    )

    with one_line_errors():
        records = automation_store().list()
    if as_json:
        print_json([automation_document(r) for r in records])
        return
    from stratoflow.automations.secrets import has_inline_secrets

    table = Table(title="Automations")
    for column in ("name", "id", "trigger", "actions", "enabled", "last fired", "last error"):
        table.add_column(column)
    inline = [r.name for r in records if has_inline_secrets(r.automation)]
    for record in records:
        automation = record.automation
        table.add_row(
            record.name + (" [red](inline secrets)[/]" if record.name in inline else ""),
            record.id,
            describe_trigger(automation.trigger),
            ", ".join(action_types(automation)),
            "yes" if record.enabled else "[yellow]paused[/]",
            f"{record.last_fired:%Y-%m-%d %H:%M:%S}" if record.last_fired else "-",
            (record.last_error or "-")[:60],
        )
    out.print(table)
    if inline:
        # Stored by an earlier version: the table (readable by workers) holds the values.
        out.print(
            f"[red]{len(inline)} automation(s) keep webhook secrets in the state table[/], "
            "which workers can read. Rotate those secrets, then recreate each one to move "
            "them to Secrets Manager: strato automation delete NAME && strato automation "
            "create -f FILE (docs/automations.md#webhook-secrets).",
            highlight=False,
        )


@automation_app.command("inspect")
def inspect(name_or_id: NameOrId, as_json: JsonOption = False) -> None:
    """Show one automation: its definition, when it last fired, its last error and its
    firings of the last 7 days."""
    from stratoflow.automations.api import automation_store
    from stratoflow.automations.describe import automation_document, firing_document

    with one_line_errors():
        store = automation_store()
        record = store.find(name_or_id)
        firings = store.list_firings(record.id, limit=INSPECT_FIRINGS)
    document = {
        **automation_document(record),
        "recent_firings": [firing_document(firing) for firing in firings],
    }
    if as_json:
        print_json(document)
    else:
        out.print_json(data=document)


@automation_app.command("pause")
def pause(name_or_id: NameOrId) -> None:
    """Pause an automation: it stops counting events and firing."""
    from stratoflow.automations.api import automation_store

    with one_line_errors():
        record = automation_store().set_enabled(name_or_id, False)
    out.print(f"Paused automation {record.name} ({record.id}).", highlight=False)


@automation_app.command("resume")
def resume(name_or_id: NameOrId) -> None:
    """Resume a paused automation."""
    from stratoflow.automations.api import automation_store

    with one_line_errors():
        record = automation_store().set_enabled(name_or_id, True)
    out.print(f"Resumed automation {record.name} ({record.id}).", highlight=False)


@automation_app.command("delete")
def delete(name_or_id: NameOrId) -> None:
    """Delete an automation, with its buckets and firings."""
    from stratoflow.automations.api import automation_store

    with one_line_errors():
        record = automation_store().delete(name_or_id)
    out.print(f"Deleted automation {record.name} ({record.id}).", highlight=False)
