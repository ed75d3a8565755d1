"""`strato events ...`: what happened, newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from stratoflow.cli.common import fail, one_line_errors, out, print_json

if TYPE_CHECKING:
    from stratoflow.events.models import Event

events_app = typer.Typer(
    help="List events: state changes and your own events.", no_args_is_help=True
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, now: datetime, *, option: str) -> datetime:
    """`90s`, `15m`, `1h`, `2d`, `1w` (that long before now), or an ISO date or time
    (`2026-11-21`, `2026-11-21T10:00`, with an offset or `Z`; naive times are UTC)."""
    match = _DURATION.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return now - timedelta(seconds=amount * _UNIT_SECONDS[unit])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(
            f"{option} {text!r} is neither a duration (30m, 1h, 2d, 1w) nor an ISO time "
            "(2026-11-21T10:00, 2026-11-21T10:00Z)."
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _related(event: Event) -> str:
    return ", ".join(
        f"{r.role}: {r.get('stratoflow.resource.name') or r.id}" for r in event.related
    )


def _render(events: list[Event]) -> None:
    table = Table(title=f"{len(events)} events, newest first", title_justify="left")
    for column in ("occurred", "event", "resource", "related"):
        table.add_column(column, overflow="fold")
    for event in events:
        name = event.resource.get("stratoflow.resource.name")
        resource = event.resource.id if not name else f"{name} ({event.resource.id})"
        table.add_row(  # Text: labels are shown as written, never as rich markup
            event.occurred.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            Text(event.event),
            Text(resource),
            Text(_related(event)),
        )
    out.print(table)


@events_app.command("ls")
def list_events(
    since: Annotated[
        str, typer.Option(help="Start of the window: 1h, 30m, 2d, or an ISO time (UTC if naive).")
    ] = "24h",
    until: Annotated[
        str | None, typer.Option(help="End of the window (default: now); same forms as --since.")
    ] = None,
    resource: Annotated[
        str | None, typer.Option(help="Resource id prefix, e.g. stratoflow.flow-run.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Event name prefix, e.g. stratoflow.flow-run.Failed")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many events.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON.")] = False,
    flow_run: Annotated[
        str | None,
        typer.Option(
            "--flow-run",
            help="Only this flow run's events and its task runs' (derived from the runs "
            "when they are not stored).",
        ),
    ] = None,
) -> None:
    """List events, newest first (the AWS backend keeps them for
    STRATOFLOW_EVENT_RETENTION_DAYS days). Flow runs' state events are derived from the
    runs when they are not stored (STRATOFLOW_STORE_FLOW_RUN_EVENTS); task runs' are
    stored only with STRATOFLOW_STORE_TASK_RUN_EVENTS=true, and `--flow-run ID` shows
    them either way."""
    # Imported here: `strato --help` need not load boto3 and the backend.
    from stratoflow.backends.aws.backend import AwsBackend
    from stratoflow.context import get_services
    from stratoflow.events.on_read import event_reader_for, flow_run_events

    with one_line_errors():
        services = get_services()
    if not isinstance(services.backend, AwsBackend):
        raise fail(
            "Events are stored with the AWS backend: set STRATOFLOW_BACKEND=aws (and "
            "STRATOFLOW_ENDPOINT_URL for the local emulator)."
        )
    now = services.clock.now()
    start = parse_when(since, now, option="--since")
    end = parse_when(until, now, option="--until") if until is not None else None
    with one_line_errors():
        if flow_run is None:
            events = event_reader_for(services).query(
                start, end, name=name, resource=resource, limit=limit
            )
        else:
            events = flow_run_events(services, flow_run, start, end, name=name, limit=limit)
    if as_json:
        print_json([event.model_dump(mode="json") for event in events])
        return
    if not events:
        out.print(f"No events since {start.isoformat(timespec='seconds')}.", highlight=False)
        return
    _render(events)
