"""Events derived on read: the state events of flow runs and of their task runs, from
their items, for installations that do not store them (the default:
STRATOFLOW_STORE_FLOW_RUN_EVENTS, STRATOFLOW_STORE_TASK_RUN_EVENTS). The same derivation
(and ids) as the stream's: run_events.py, which says what an item no longer holds.

Every reader of events goes through here:

- `event_reader_for(services)`: the event store, merged with the flow-run state events
  derived from the runs whose state changed in the window (`strato events ls`, the UI's
  events list and its cursor paging);
- `flow_run_events`: one flow run's events and its task runs' (`strato events ls
  --flow-run`, a run's page);
- `find_event`: one event, stored, or derived from the flow run it names (the UI's event
  page: a derived event has no item to get by id).

Items are written by workers, so they are untrusted: an item the derivation cannot read
(UnreadableRecord) shows no events and does not stop the listing.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from stratoflow import resources
from stratoflow.backends.aws.backend import AwsBackend
from stratoflow.backends.aws.changed_runs import ChangedRun
from stratoflow.backends.aws.items import from_item, to_attribute, to_item
from stratoflow.events.emit import event_store_for
from stratoflow.events.labels import flow_run_id as flow_run_resource_id
from stratoflow.events.models import Event
from stratoflow.events.records import UnreadableRecord
from stratoflow.events.run_events import flow_run_state_events, task_run_events
from stratoflow.events.store import DEFAULT_LIMIT, EventStoreLike, sort_time
from stratoflow.settings import get_settings

if TYPE_CHECKING:
    from stratoflow.context import Services

FLOW_RUN_EVENTS = flow_run_resource_id("")
"""What the names and resource ids of flow-run events start with."""
CLOCK_SKEW = timedelta(minutes=5)
"""A run's states are stamped by different machines (scheduler, worker, API), so a state
may be stamped a little before the one it follows: runs are looked up this much before
a window starts, and a state is taken to be at most this much older than the next."""


def event_reader_for(services: Services) -> EventStoreLike:
    """The events readers list: the event store, merged with the flow-run state events
    derived from the runs when the stream does not store them (AWS backend,
    STRATOFLOW_STORE_FLOW_RUN_EVENTS off). The in-process backend derives no events (its
    store holds the emitted ones): its store as it is."""
    store = event_store_for(services)
    backend = services.backend
    if isinstance(backend, AwsBackend) and not get_settings().store_flow_run_events:
        return EventsWithDerived(store, backend)
    return store


def _key(event: Event) -> tuple[str, str]:
    """The store's order (newest first by this key, descending)."""
    return sort_time(event.occurred), event.id


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _may_hold(prefix: str | None) -> bool:
    """Whether names or resource ids starting with `prefix` may be flow-run events'."""
    return (
        prefix is None or prefix.startswith(FLOW_RUN_EVENTS) or FLOW_RUN_EVENTS.startswith(prefix)
    )


def merged(stored: Iterable[Event], derived: Iterable[Event], limit: int) -> list[Event]:
    """Both, once per id (the stored one kept), in the store's order, at most `limit`."""
    by_id = {event.id: event for event in derived}
    by_id.update((event.id, event) for event in stored)
    return sorted(by_id.values(), key=_key, reverse=True)[:limit]


class ChangedRuns(Protocol):
    """Where the runs come from (`AwsBackend`)."""

    def list_flow_runs_changed_since(self, moment: datetime) -> Iterator[ChangedRun]: ...


class EventsWithDerived:
    """An event store (`EventStoreLike`) whose queries also return the flow-run state
    events derived from the runs that changed in the window (see the module docstring)."""

    def __init__(self, store: EventStoreLike, runs: ChangedRuns) -> None:
        self.store = store
        self.runs = runs

    def put(self, event: Event, *, derived: bool) -> bool:
        return self.store.put(event, derived=derived)

    def get(self, event_id: str) -> Event | None:
        """A stored event (a derived one is found with `find_event`, from its run)."""
        return self.store.get(event_id)

    def query(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        name: str | None = None,
        resource: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Event]:
        """As `EventStore.query`: events in [since, until], newest first, at most `limit`,
        `name` and `resource` prefixes."""
        stored = self.store.query(since, until, name=name, resource=resource, limit=limit)
        if not (_may_hold(name) and _may_hold(resource)):
            return stored
        start = _aware(since)
        changed = self.runs.list_flow_runs_changed_since(start - CLOCK_SKEW)
        derived = newest_derived(
            changed,
            start,
            None if until is None else _aware(until),
            name=name,
            resource=resource,
            limit=limit,
        )
        return merged(stored, derived, limit)


def newest_derived(
    changed: Iterator[ChangedRun],
    since: datetime,
    until: datetime | None,
    *,
    name: str | None = None,
    resource: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[Event]:
    """The newest `limit` state events of the runs `changed` lists in [since, until] with
    those prefixes. The runs come latest change first after those in no order (`changed`
    None): reading stops at a run that changed before the `limit` events kept, give or
    take CLOCK_SKEW."""
    kept: list[tuple[tuple[str, str], Event]] = []  # a min-heap: the oldest kept on top
    seen: set[str] = set()  # a run read twice (it changed state while being listed)
    for run in changed:
        full = len(kept) >= limit
        if full and run.changed is not None and kept[0][1].occurred > run.changed + CLOCK_SKEW:
            break  # this run's events, and every later run's, are older than those kept
        try:
            events = flow_run_state_events(run.item)
        except UnreadableRecord:
            continue  # a malformed item (a worker's write) shows no events
        for event in events:
            if not (since <= event.occurred and (until is None or event.occurred <= until)):
                continue
            if name is not None and not event.event.startswith(name):
                continue
            if resource is not None and not event.resource.id.startswith(resource):
                continue
            if event.id in seen:
                continue
            seen.add(event.id)
            entry = (_key(event), event)
            if len(kept) < limit:
                heapq.heappush(kept, entry)
            elif entry[0] > kept[0][0]:
                heapq.heapreplace(kept, entry)
    return sorted((event for _, event in kept), key=_key, reverse=True)


# One flow run


def flow_run_task_run_events(backend: AwsBackend, flow_run_id: str) -> list[Event]:
    """Every state event of the flow run's task runs (one Query of its partition)."""
    partition = resources.flow_run_key(flow_run_id)[resources.PARTITION_KEY]
    found: list[Event] = []
    paginator = backend.dynamodb.get_paginator("query")
    for page in paginator.paginate(
        TableName=backend.table,
        KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
        ExpressionAttributeNames={"#pk": resources.PARTITION_KEY, "#sk": resources.SORT_KEY},
        ExpressionAttributeValues={
            ":pk": to_attribute(partition),
            ":prefix": to_attribute(resources.TASK_RUN_SORT_PREFIX),
        },
    ):
        for item in page["Items"]:
            try:
                found.extend(task_run_events(from_item(item)))
            except UnreadableRecord:
                continue  # a malformed item (a worker's write) shows no events
    return found


def flow_run_own_events(backend: AwsBackend, flow_run_id: str) -> list[Event]:
    """The flow run's state events, from its item (one GetItem; none without one)."""
    item = backend.dynamodb.get_item(
        TableName=backend.table, Key=to_item(resources.flow_run_key(flow_run_id))
    ).get("Item")
    if item is None:
        return []
    try:
        return flow_run_state_events(from_item(item))
    except UnreadableRecord:
        return []  # a malformed item (a worker's write) shows no events


def flow_run_events(
    services: Services,
    flow_run_id: str,
    start: datetime,
    end: datetime | None = None,
    *,
    name: str | None = None,
    limit: int = 100,
) -> list[Event]:
    """A flow run's events, stored or derived on read (its own state events and its task
    runs'), newest first: what `strato events ls --flow-run` and the UI's run page show.
    `name` is an event name prefix."""
    stored = event_store_for(services).query(
        start, end, name=name, resource=flow_run_resource_id(flow_run_id), limit=limit
    )
    backend = services.backend
    if not isinstance(backend, AwsBackend):
        return stored  # the in-process backend derives no events
    derived = []
    # Derived whatever the settings (one read each): events from before a setting changed
    # are listed too, once (the ids are the stream's).
    for event in [
        *flow_run_own_events(backend, flow_run_id),
        *flow_run_task_run_events(backend, flow_run_id),
    ]:
        in_window = _aware(start) <= event.occurred and (
            end is None or event.occurred <= _aware(end)
        )
        if in_window and (name is None or event.event.startswith(name)):
            derived.append(event)
    return merged(stored, derived, limit)


def find_event(services: Services, event_id: str, flow_run_id: str | None = None) -> Event | None:
    """The event with that id: stored, or (given the flow run it is about, or whose task
    run it is about) derived from that run's items."""
    found = event_store_for(services).get(event_id)
    backend = services.backend
    if found is not None or flow_run_id is None or not isinstance(backend, AwsBackend):
        return found
    for event in [
        *flow_run_own_events(backend, flow_run_id),
        *flow_run_task_run_events(backend, flow_run_id),
    ]:
        if event.id == event_id:
            return event
    return None
