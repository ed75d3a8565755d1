"""`strato block ls|inspect|delete`.

The CLI never reads a block's secret values: `inspect` shows each secret field as
`********` from the document alone (no Secrets Manager call). Names and values are shown
as written, never as rich markup.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stratoflow.blocks.records import MASK, BlockDocument
from stratoflow.cli.artifacts import escaped_errors
from stratoflow.cli.common import fail, out, print_json

block_app = typer.Typer(
    help="Blocks: typed configuration (secret fields in AWS Secrets Manager) that flows "
    "load with Block.load. Save them from Python with operator credentials.",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
VALUE_COLUMN_CHARACTERS = 60


def block_document(document: BlockDocument) -> dict[str, Any]:
    """What the CLI shows of a block: its fields with every secret field masked."""
    data = dict(document.data)
    for name in document.secret_fields:
        data[name] = MASK
    return {
        "id": str(document.id),
        "block_type_slug": document.block_type_slug,
        "block_type_name": document.block_type_name,
        "name": document.name,
        "data": data,
        "secret_fields": list(document.secret_fields),
        "pools": list(document.pools) if document.pools is not None else None,
        "created": document.created.isoformat(),
        "updated": document.updated.isoformat(),
    }


def _blocks() -> Any:
    from stratoflow.context import get_services

    return get_services().backend.blocks


@block_app.command("ls")
def list_command(
    block_type: Annotated[
        str | None, typer.Option("--type", help="Only blocks of this type slug.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """List blocks by type and name."""
    from stratoflow.blocks.records import validate_block_name

    with escaped_errors():
        if block_type is not None:
            validate_block_name(block_type, "Block type slug")
        documents = _blocks().list_blocks(block_type_slug=block_type, limit=limit)
    if as_json:
        print_json([block_document(d) for d in documents])
        return
    if not documents:
        out.print("No blocks.", highlight=False)
        return
    table = Table(title="Blocks", title_justify="left")
    for column in ("block", "type", "secret fields", "readable by", "updated"):
        table.add_column(column, overflow="fold")
    for document in documents:
        readers = "every pool" if document.pools is None else ", ".join(document.pools)
        table.add_row(  # Text: shown as written, never as markup
            Text(document.slug),
            Text(document.block_type_name),
            Text(", ".join(document.secret_fields)),
            Text(readers if document.secret_fields else ""),
            document.updated.isoformat(timespec="seconds"),
        )
    out.print(table)


def _read(slug: str) -> BlockDocument:
    from stratoflow.blocks.records import split_slug

    with escaped_errors():
        block_type, name = split_slug(slug)
        document = _blocks().read(block_type, name)
    if document is None:
        raise fail(escape(f"Block {slug!r} not found; `strato block ls` lists them."))
    return document  # type: ignore[no-any-return]


@block_app.command("inspect")
def inspect_command(
    slug: Annotated[str, typer.Argument(help="TYPE/NAME, e.g. secret/my-token.")],
    as_json: JsonOption = False,
) -> None:
    """A block's fields (secret fields shown as ********), pools and times."""
    document = block_document(_read(slug))
    if as_json:
        print_json(document)
        return
    table = Table(title=Text(f"{document['block_type_name']} {slug}"), show_header=False)
    table.add_column("field", overflow="fold")
    table.add_column("value", overflow="fold")
    for name, value in document["data"].items():
        shown = value if name in document["secret_fields"] else json.dumps(value)
        table.add_row(Text(name), Text(str(shown)))
    pools = document["pools"]
    table.add_row(Text("(secrets readable by)"), Text(", ".join(pools) if pools else "every pool"))
    table.add_row(Text("(id)"), Text(document["id"]))
    table.add_row(Text("(updated)"), Text(document["updated"]))
    out.print(table)


@block_app.command("delete")
def delete_command(
    slug: Annotated[str, typer.Argument(help="TYPE/NAME, e.g. secret/my-token.")],
) -> None:
    """Delete a block; its secret is scheduled for deletion (7-day recovery window)."""
    from stratoflow.blocks.records import split_slug

    with escaped_errors():
        block_type, name = split_slug(slug)
        deleted = _blocks().delete(block_type, name)
    if not deleted:
        raise fail(escape(f"Block {slug!r} not found; `strato block ls` lists them."))
    out.print(Text(f"Deleted block {slug!r}."))
