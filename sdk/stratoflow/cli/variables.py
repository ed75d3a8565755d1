"""`strato variable ls|get|set|delete|inspect`.

Names and values are shown as written (never as rich markup): workers can write them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stratoflow.cli.artifacts import escaped_errors
from stratoflow.cli.common import err, fail, out, print_json

variable_app = typer.Typer(
    help="Variables: named JSON values flows read with Variable.get (not secrets).",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
VALUE_COLUMN_CHARACTERS = 60


def parse_value(raw: str) -> Any:
    """JSON when it parses (`10`, `true`, `{"a": 1}`, `"quoted"`), else the text itself,
    as `prefect variable set` does."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _document(record: Any) -> dict[str, Any]:
    return {
        "name": record.name,
        "value": record.value,
        "tags": list(record.tags),
        "created": record.created.isoformat(),
        "updated": record.updated.isoformat(),
    }


def _memory_backend_note() -> None:
    from stratoflow.backends.memory import MemoryBackend
    from stratoflow.context import get_services

    if isinstance(get_services().backend, MemoryBackend):
        err.print(
            "Note: the in-process backend keeps variables only in this process; set "
            "STRATOFLOW_BACKEND=aws to store them in the state table.",
            markup=False,
            highlight=False,
        )


@variable_app.command("ls")
def list_command(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List variables by name."""
    from stratoflow.variables import list_variables

    with escaped_errors():
        records = list_variables(limit=limit)
    if as_json:
        print_json([_document(record) for record in records])
        return
    if not records:
        out.print("No variables.", highlight=False)
        return
    table = Table(title="Variables", title_justify="left")
    for column in ("name", "value", "tags", "updated"):
        table.add_column(column, overflow="fold")
    for record in records:
        value = json.dumps(record.value, ensure_ascii=False)
        if len(value) > VALUE_COLUMN_CHARACTERS:
            value = value[: VALUE_COLUMN_CHARACTERS - 1] + "…"
        table.add_row(  # Text: shown as written, never as markup
            Text(record.name),
            Text(value),
            Text(", ".join(record.tags)),
            record.updated.isoformat(timespec="seconds"),
        )
    out.print(table)


def _read(name: str) -> Any:
    from stratoflow.variables import read_variable

    with escaped_errors():
        record = read_variable(name)
    if record is None:
        raise fail(escape(f"Variable {name!r} not found; `strato variable ls` lists them."))
    return record


@variable_app.command("get")
def get_command(name: str) -> None:
    """Print a variable's value as JSON."""
    record = _read(name)
    out.print(
        json.dumps(record.value, ensure_ascii=False), markup=False, highlight=False, soft_wrap=True
    )


@variable_app.command("inspect")
def inspect_command(name: str, as_json: JsonOption = False) -> None:
    """A variable with its tags and times."""
    document = _document(_read(name))
    if as_json:
        print_json(document)
    else:
        out.print_json(data=document)  # JSON text: never read as markup


@variable_app.command("set")
def set_command(
    name: str,
    value: Annotated[str, typer.Argument(help="JSON (10, true, '{\"a\": 1}') or plain text.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the variable if it exists.")
    ] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat for more).")] = None,
) -> None:
    """Set a variable; an existing one needs --overwrite."""
    from stratoflow.variables import Variable, VariableAlreadyExists

    with escaped_errors():
        try:
            Variable.set(name, parse_value(value), tags=tag, overwrite=overwrite)
        except VariableAlreadyExists:
            raise fail(
                escape(f"Variable {name!r} already exists. Use `--overwrite` to update it.")
            ) from None
    _memory_backend_note()
    out.print(Text(f"Set variable {name!r}."))


@variable_app.command("delete")
def delete_command(name: str) -> None:
    """Delete a variable."""
    from stratoflow.variables import Variable

    with escaped_errors():
        deleted = Variable.unset(name)
    if not deleted:
        raise fail(escape(f"Variable {name!r} not found; `strato variable ls` lists them."))
    out.print(Text(f"Deleted variable {name!r}."))


variable_app.command("unset", hidden=True)(delete_command)  # Prefect's name for it
