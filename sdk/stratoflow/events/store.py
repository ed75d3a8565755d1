"""Where events are kept: `EVENT#<id>` items in the state table, listed by time.

Each event is one item: its JSON document, its name and resource id (for filters), the
`by_time` index keys `EVENTS#<UTC day of occurred>` / `<occurred, ISO UTC>#<id>`, and
the TTL attribute, so DynamoDB deletes it `event_retention_days` after it occurred.
Writes are conditional on the id: storing an event again (a redelivered stream record
derives the same id) changes nothing.

`MemoryEventStore` has the same interface, for the in-process backend and for tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.items import to_attribute, to_item
from stratoflow.backends.aws.own_keys import OwnItems
from stratoflow.events.documents import COMPRESSED, compress, document_of
from stratoflow.events.models import Event
from stratoflow.exceptions import StratoflowError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from stratoflow.clock import Clock

DEFAULT_RETENTION_DAYS = 7
DEFAULT_LIMIT = 100
MAX_LOOKBACK_DAYS = 3650
ENTITY = "event"


class InvalidEventQuery(StratoflowError, ValueError):
    """An event query whose time window or limit cannot be used."""


def sort_time(moment: datetime) -> str:
    """Fixed-width ISO UTC time (always with microseconds), so that strings sort by instant."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def event_to_item(event: Event, *, derived: bool, retention: timedelta) -> dict[str, Any]:
    occurred = event.occurred.astimezone(UTC)
    index = resources.BY_TIME
    return to_item(
        {
            **resources.event_key(event.id),
            "entity": ENTITY,
            "id": event.id,
            "event": event.event,
            "resource_id": event.resource.id,
            "occurred": sort_time(occurred),
            "derived": derived,
            COMPRESSED: compress(event.model_dump_json()),
            index.partition_key: resources.events_day_partition(occurred.date()),
            index.sort_key: f"{sort_time(occurred)}#{event.id}",
            resources.TTL_ATTRIBUTE: int((occurred + retention).timestamp()),
        }
    )


def event_from_document(document: str) -> Event:
    """The event a stored document holds (see stratoflow.events.documents)."""
    return Event.model_validate_json(document)


class EventStoreLike(Protocol):
    def put(self, event: Event, *, derived: bool) -> bool: ...

    def get(self, event_id: str) -> Event | None: ...

    def query(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        name: str | None = None,
        resource: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Event]: ...


def _window(
    since: datetime, until: datetime | None, limit: int
) -> tuple[datetime, datetime | None]:
    if limit < 1:
        raise InvalidEventQuery(f"The limit must be at least 1 (got {limit}).")
    start = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    end = (
        None
        if until is None
        else (until if until.tzinfo is not None else until.replace(tzinfo=UTC))
    )
    if end is not None and end < start:
        raise InvalidEventQuery(
            f"The window ends ({end.isoformat()}) before it starts ({start.isoformat()})."
        )
    return start, end


def _matches(event: Event, name: str | None, resource: str | None) -> bool:
    return (name is None or event.event.startswith(name)) and (
        resource is None or event.resource.id.startswith(resource)
    )


class EventStore:
    """Events in the state table (see the module docstring)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.table = table
        self.retention = timedelta(days=retention_days)
        self.clock = clock

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def put(self, event: Event, *, derived: bool) -> bool:
        """Store `event`; False when an event with its id is stored already."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=event_to_item(event, derived=derived, retention=self.retention),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": resources.PARTITION_KEY},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, event_id: str) -> Event | None:
        item = self.client.get_item(
            TableName=self.table, Key=to_item(resources.event_key(event_id)), ConsistentRead=True
        ).get("Item")
        return None if item is None else event_from_document(document_of(item))

    def query(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        name: str | None = None,
        resource: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Event]:
        """Events that occurred in [since, until], newest first, at most `limit`.

        `name` and `resource` are prefixes of the event name and of the resource id
        (`name="stratoflow.flow-run."`, `resource="stratoflow.deployment.nightly"`).
        One query per UTC day of the window, newest day first, paged.
        """
        start, end = _window(since, until, limit)
        # Without an end, look one day ahead too: an emitter's clock may run ahead.
        last_day = (end or self._now() + timedelta(days=1)).astimezone(UTC).date()
        found: list[Event] = []
        for day in _days_back(last_day, start.astimezone(UTC).date()):
            for event in self._query_day(day, start, end, name, resource):
                found.append(event)
                if len(found) >= limit:
                    return found
        return found

    def _query_day(
        self,
        day: date,
        start: datetime,
        end: datetime | None,
        name: str | None,
        resource: str | None,
    ) -> Iterator[Event]:
        index = resources.BY_TIME
        names = {"#p": index.partition_key, "#s": index.sort_key}
        values: dict[str, Any] = {
            ":p": to_attribute(resources.events_day_partition(day)),
            ":from": to_attribute(sort_time(start)),
            # "~" sorts after "#<id>": the upper bound includes events at exactly `end`.
            ":to": to_attribute(f"{sort_time(end)}#~" if end is not None else "~"),
        }
        filters = []
        if name:
            names["#e"] = "event"
            values[":name"] = to_attribute(name)
            filters.append("begins_with(#e, :name)")
        if resource:
            names["#r"] = "resource_id"
            values[":resource"] = to_attribute(resource)
            filters.append("begins_with(#r, :resource)")
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index.name,
            "KeyConditionExpression": "#p = :p AND #s BETWEEN :from AND :to",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
        paginator = self.client.get_paginator("query")
        # Only `EVENT#` items are events, whatever else carries an events partition.
        with OwnItems("event", _event_key) as own:
            for page in paginator.paginate(**query):
                for item in own(page["Items"]):
                    yield event_from_document(document_of(item))


def _event_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    # The id of the document that is used (a plain parse: the model is validated later).
    # A BadDocument is a ValueError: OwnItems skips the item with a warning.
    return resources.event_key(str(json.loads(document_of(item))["id"]))


def _days_back(last: date, first: date) -> Iterator[date]:
    day = last
    for _ in range(MAX_LOOKBACK_DAYS + 2):
        if day < first:
            return
        yield day
        day -= timedelta(days=1)


class MemoryEventStore:
    """Events of this process (the in-process backend, tests)."""

    def __init__(self, *, max_events: int = 10_000) -> None:
        self.max_events = max_events
        self._events: dict[str, tuple[Event, bool]] = {}
        self._lock = threading.Lock()

    def put(self, event: Event, *, derived: bool) -> bool:
        with self._lock:
            if event.id in self._events:
                return False
            self._events[event.id] = (event, derived)
            while len(self._events) > self.max_events:  # the oldest stored goes first
                del self._events[next(iter(self._events))]
        return True

    def get(self, event_id: str) -> Event | None:
        with self._lock:
            found = self._events.get(event_id)
        return None if found is None else found[0]

    def is_derived(self, event_id: str) -> bool:
        with self._lock:
            return self._events[event_id][1]

    def query(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        name: str | None = None,
        resource: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Event]:
        start, end = _window(since, until, limit)
        with self._lock:
            events = [event for event, _ in self._events.values()]
        selected = [
            e
            for e in events
            if e.occurred >= start
            and (end is None or e.occurred <= end)
            and _matches(e, name, resource)
        ]
        selected.sort(key=lambda e: (e.occurred, e.id), reverse=True)
        return selected[:limit]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
