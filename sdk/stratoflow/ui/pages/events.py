"""Events: filtered by name prefix, resource and time window, newest first, a page at a
time (the event store's query with the flow-run events derived on read, as `strato
events ls`: stratoflow.events.on_read). Each event's resource and related resources
link to their pages (a flow run, a deployment, a work pool, ...) and to the events that
involve them; payloads are shown as escaped text.

Pages follow a cursor, the last event shown (its time and id, the store's order), so
that events arriving meanwhile do not shift them. `any_resource` (an event whose
resource or one of whose related resources has that id) is checked here, not by the
store: a page then looks at most SCAN_LIMIT events and says how far back it looked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aws_lambda_powertools.event_handler import Response

from stratoflow.context import get_services
from stratoflow.events import labels
from stratoflow.events.models import Event, Resource
from stratoflow.events.store import EventStoreLike, sort_time
from stratoflow.exceptions import ObjectNotFound
from stratoflow.settings import get_settings
from stratoflow.ui.http import (
    deployment_url,
    flow_run_url,
    new_router,
    path_value,
    query_value,
    with_query,
    work_pool_url,
)
from stratoflow.ui.rendering import pretty_json, render

router = new_router()

PAGE_SIZE = 50
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_WINDOW = "24h"
SCAN_BATCH = 200
SCAN_LIMIT = 2000
"""Events one page looks at for an `any_resource` filter before it stops."""
MAX_FILTER = 512


@dataclass(frozen=True)
class Cursor:
    """The last event a page showed: the next page starts after it."""

    occurred: datetime
    event_id: str

    @classmethod
    def of(cls, event: Event) -> Cursor:
        return cls(event.occurred, event.id)

    @property
    def key(self) -> tuple[str, str]:
        """The store's order (newest first by this key, descending)."""
        return sort_time(self.occurred), self.event_id

    def as_text(self) -> str:
        return f"{sort_time(self.occurred)}~{self.event_id}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        moment, _, event_id = text.partition("~")
        try:
            occurred = datetime.fromisoformat(moment)
        except ValueError:
            return None
        if occurred.tzinfo is None or not event_id:
            return None
        return cls(occurred, event_id)


@dataclass(frozen=True)
class EventFilter:
    """The list's filters, from the query string (each optional)."""

    name: str | None = None
    """A prefix of the event's name (`stratoflow.flow-run.`)."""
    resource: str | None = None
    """A prefix of the event's own resource id."""
    any_resource: str | None = None
    """The id of its resource or of one of its related resources."""
    window: str = DEFAULT_WINDOW
    before: Cursor | None = None

    @classmethod
    def from_query(cls, get: Callable[[str], str | None]) -> EventFilter:
        window = get("window") or DEFAULT_WINDOW
        return cls(
            name=_bounded(get("name")),
            resource=_bounded(get("resource")),
            any_resource=_bounded(get("any_resource")),
            window=window if window in WINDOWS else DEFAULT_WINDOW,
            before=Cursor.parse(get("before")),
        )

    def since(self, now: datetime) -> datetime:
        return now - WINDOWS[self.window]

    def involves(self, event: Event) -> bool:
        wanted = self.any_resource
        return wanted is None or any(r.id == wanted for r in (event.resource, *event.related))

    def url(self, **changes: str | None) -> str:
        values: dict[str, str | None] = {
            "name": self.name,
            "resource": self.resource,
            "any_resource": self.any_resource,
            "window": self.window,
            "before": self.before.as_text() if self.before else None,
            **changes,
        }
        return with_query("/events", values)


def _bounded(value: str | None) -> str | None:
    return value[:MAX_FILTER] if value else None


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    next: Cursor | None
    """Where the next (older) page starts; None: no older events match."""
    looked_back_to: datetime | None = None
    """Set when the page stopped after SCAN_LIMIT events without filling up."""


def read_page(store: EventStoreLike, where: EventFilter, now: datetime) -> EventPage:
    """One page of events matching `where`, newest first, after `where.before`."""
    since = where.since(now)
    position = where.before
    matched: list[Event] = []
    scanned = 0
    batch = PAGE_SIZE + 1 if where.any_resource is None else SCAN_BATCH
    while True:
        found, exhausted = events_before(store, where, since, position, batch)
        for event in found:
            scanned += 1
            position = Cursor.of(event)
            if where.involves(event):
                matched.append(event)
                if len(matched) > PAGE_SIZE:
                    shown = matched[:PAGE_SIZE]
                    return EventPage(shown, Cursor.of(shown[-1]))
        if exhausted or position is None:
            return EventPage(matched, None)
        if scanned >= SCAN_LIMIT:
            return EventPage(matched, position, position.occurred)


def events_before(
    store: EventStoreLike,
    where: EventFilter,
    since: datetime,
    cursor: Cursor | None,
    count: int,
) -> tuple[list[Event], bool]:
    """Up to `count` events after `cursor` in the store's order (newest first), and
    whether that was the last of them."""
    until = cursor.occurred if cursor is not None else None
    limit = count
    while True:
        found = store.query(since, until, name=where.name, resource=where.resource, limit=limit)
        fresh = [e for e in found if cursor is None or Cursor.of(e).key < cursor.key]
        if len(found) < limit:
            return fresh[:count], len(fresh) <= count
        if len(fresh) >= count:
            return fresh[:count], False
        # The query's end is inclusive: events at the cursor's instant, shown already,
        # filled the batch. Look further.
        limit *= 2


@dataclass(frozen=True)
class ResourceLink:
    """A resource as a link: to its page when it has one, and to its events."""

    id: str
    label: str
    role: str | None
    page: str | None
    events: str


def _runs_of(key: str) -> Callable[[str], str]:
    return lambda value: with_query("/flow-runs", {key: value})


RESOURCE_PAGES: tuple[tuple[str, Callable[[str], str]], ...] = (
    (labels.flow_run_id(""), flow_run_url),
    (labels.deployment_id(""), deployment_url),
    (labels.work_pool_id(""), work_pool_url),
    (f"{labels.PREFIX}.work-queue.", lambda rest: work_pool_url(rest.split("/", 1)[0])),
    (f"{labels.PREFIX}.flow.", _runs_of("flow")),
    (f"{labels.PREFIX}.tag.", _runs_of("tag")),
)
"""Resource id prefixes (labels.py spells them) and the page of the rest of the id."""


def resource_page(resource_id: str) -> str | None:
    for prefix, page in RESOURCE_PAGES:
        rest = resource_id.removeprefix(prefix)
        if rest != resource_id and rest:
            return page(rest)
    return None


def resource_link(resource: Resource) -> ResourceLink:
    return ResourceLink(
        id=resource.id,
        label=resource.get("stratoflow.resource.name") or resource.id,
        role=resource.role,
        page=resource_page(resource.id),
        events=with_query("/events", {"any_resource": resource.id}),
    )


@router.get("/events")
def list_events() -> Response[str]:
    services = get_services()
    event = router.current_event
    where = EventFilter.from_query(lambda name: query_value(event, name))
    # Imported on first use: the derivation of run events is not for the API Lambda's
    # cold start (bench/cold_start.py, tests/unit/test_handler_imports.py).
    from stratoflow.events import on_read

    page = read_page(on_read.event_reader_for(services), where, services.clock.now())
    return render(
        "events/list.html",
        active="events",
        where=where,
        page=page,
        windows=list(WINDOWS),
        link=resource_link,
        retention_days=get_settings().event_retention_days,
    )


@router.get("/events/<event_id>")
def event_page(event_id: str) -> Response[str]:
    event_id = path_value(event_id)
    # A flow run's state event that was not stored is derived from the run the link names.
    flow_run_id = _bounded(query_value(router.current_event, "flow_run"))
    from stratoflow.events import on_read  # on first use: see the events list above

    found = on_read.find_event(get_services(), event_id, flow_run_id)
    if found is None:
        raise ObjectNotFound(
            f"No event {event_id!r}: events are kept "
            f"{get_settings().event_retention_days} days (STRATOFLOW_EVENT_RETENTION_DAYS); "
            "a flow run's state events are found from the run's page or the events list."
        )
    return render(
        "events/page.html",
        active="events",
        event=found,
        link=resource_link,
        document=pretty_json(found.model_dump(mode="json")),
    )
