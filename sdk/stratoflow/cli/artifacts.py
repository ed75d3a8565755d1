"""`strato artifact ls|inspect`.

Every string of an artifact (key, description, markdown, table cells, links) was
written by a flow, so by any worker: it is shown as written, never as rich markup
(`Text`, `markup=False`), and a body is parsed as JSON only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stratoflow.cli.common import fail, out, print_json
from stratoflow.exceptions import StratoflowError

if TYPE_CHECKING:
    from rich.console import RenderableType

    from stratoflow.records import ArtifactRecord

artifact_app = typer.Typer(
    help="Artifacts that runs created: markdown, tables, links, progress, images.",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DESCRIPTION_COLUMN_CHARACTERS = 50


@contextlib.contextmanager
def escaped_errors() -> Iterator[None]:
    """stratoflow's errors as one line on stderr, exit code 2; what they quote (a name
    typed or stored) is shown as written, never as markup."""
    try:
        yield
    except StratoflowError as exc:
        raise fail(escape(str(exc))) from None


def artifact_document(record: ArtifactRecord, problem: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = record.model_dump(
        mode="json", exclude={"body_loaded", "body_sha256"}
    )
    if not record.body_loaded:
        document["data"] = None
        document["data_unavailable"] = problem or "not read by this listing"
    return document


def _short(text: str | None, limit: int) -> str:
    if not text:
        return ""
    first = text.splitlines()[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


@artifact_app.command("ls")
def list_command(
    key: Annotated[str | None, typer.Option("--key", help="The versions of this key.")] = None,
    flow_run: Annotated[
        str | None, typer.Option("--flow-run", help="The artifacts of this flow run.")
    ] = None,
    all_versions: Annotated[
        bool,
        typer.Option("--all", "-a", help="Every artifact, not only the latest of each key."),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List artifacts, newest first: the latest version of each key (the last 30 days
    with the AWS backend), every artifact with --all, or filtered by key or flow run."""
    from stratoflow.artifacts import list_artifacts

    with escaped_errors():
        records = list_artifacts(
            key=key, flow_run_id=flow_run, all_versions=all_versions, limit=limit
        )
    if as_json:
        print_json([artifact_document(record) for record in records])
        return
    if not records:
        out.print("No artifacts.", highlight=False)
        return
    table = Table(title="Artifacts, newest first", title_justify="left")
    table.add_column("id", no_wrap=True)
    for column in ("key", "type", "created", "description"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(  # Text: shown as written, never as markup
            str(record.id),
            Text(record.key or "-"),
            Text(record.type or "-"),
            record.created.strftime("%Y-%m-%d %H:%M:%S"),
            Text(_short(record.description, DESCRIPTION_COLUMN_CHARACTERS)),
        )
    out.print(table)


@artifact_app.command("inspect")
def inspect_command(
    key_or_id: Annotated[str, typer.Argument(help="An artifact key or an artifact id.")],
    limit: Annotated[
        int, typer.Option(min=1, help="Versions of a key to show, newest first.")
    ] = 10,
    as_json: JsonOption = False,
) -> None:
    """Show an artifact (by id) or the versions of a key, with their data."""
    from stratoflow.artifacts.queries import load_body, read_artifact

    with escaped_errors():
        loaded = [load_body(record) for record in read_artifact(key_or_id, limit=limit)]
    if as_json:
        print_json([artifact_document(record, problem) for record, problem in loaded])
        return
    for index, (record, problem) in enumerate(loaded):
        if index:
            out.print()
        _render(record, problem)


def _render(record: ArtifactRecord, problem: str | None) -> None:
    header = Text()
    header.append(f"Artifact {record.id}", style="bold")
    if record.key:
        header.append(" key ")
        header.append(record.key, style="bold")
    header.append(f" ({record.type or 'untyped'})")
    out.print(header, soft_wrap=True)
    for label, value in (
        ("created", record.created.isoformat()),
        ("updated", record.updated.isoformat()),
        ("flow run", record.flow_run_id),
        ("task run", record.task_run_id),
    ):
        if value:
            out.print(Text(f"  {label}: {value}"), soft_wrap=True)
    if record.description:
        out.print(Text("  description:"), Text(record.description), soft_wrap=True)
    if problem is not None or not record.body_loaded:
        out.print(Text(f"  data: <not available: {problem}>"), soft_wrap=True)
        return
    out.print(body_renderable(record), soft_wrap=True)


def body_renderable(record: ArtifactRecord) -> RenderableType:
    """The data as text (markdown source, link, URL), a table or a percentage."""
    data = record.data
    if record.type == "progress" and isinstance(data, int | float):
        return Text(f"  progress: {data:g}%")
    if record.type == "table" and isinstance(data, str):
        table = _table(data)
        if table is not None:
            return table
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return Text(text)


def _table(body: str) -> Table | None:
    """A table artifact's rows (list of dicts, dict of lists or list of lists)."""
    try:
        rows: Any = json.loads(body)
    except ValueError:
        return None
    if isinstance(rows, dict) and all(isinstance(v, list) for v in rows.values()):
        columns = [str(name) for name in rows]
        height = max((len(v) for v in rows.values()), default=0)
        cells = [[_cell(rows[name], i) for name in rows] for i in range(height)]
    elif isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
        columns = list(dict.fromkeys(str(name) for row in rows for name in row))
        cells = [[_text(row.get(name)) for name in columns] for row in rows]
    elif isinstance(rows, list) and all(isinstance(row, list) for row in rows):
        width = max((len(row) for row in rows), default=0)
        columns = [str(i) for i in range(width)]
        cells = [[_cell(row, i) for i in range(width)] for row in rows]
    else:
        return None
    table = Table()
    for column in columns:
        table.add_column(Text(column), overflow="fold")
    for row in cells:
        table.add_row(*row)
    return table


def _cell(values: list[Any], index: int) -> Text:
    return _text(values[index]) if index < len(values) else Text("")


def _text(value: Any) -> Text:
    if value is None:
        return Text("")
    return Text(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
