"""Processing a batch of the state table's stream records (the automations Lambda's job).

Shared by `functions/automations/handler.py` and the local runtime, which feeds it the
records it reads from the emulator's stream. Per record: deserialize it (powertools'
`DynamoDBRecord`), derive its events (`derive.py`), store the derived ones the settings
keep (a conditional put: a redelivered record stores nothing new; by default run state
and heartbeat events are not stored, readers derive them: `on_read.py`), then hand the
record's events to the automations engine. A record that raises is reported as a batch
item failure (powertools `BatchProcessor`): the event source mapping retries from it, a
bounded number of times, then sends it to the failure destination (see docs/events.md).

The engine may see an event more than once (a retried record, a replayed batch); event
ids are stable, so it can recognise one it has handled.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from stratoflow.durable.event_waits import EventWaits
from stratoflow.events.derive import (
    HEARTBEAT_EVENT,
    StreamChange,
    derive_events,
    is_event_item,
    is_flow_run_item,
    is_task_run_item,
)
from stratoflow.events.models import Event
from stratoflow.events.store import EventStore, EventStoreLike

if TYPE_CHECKING:
    from stratoflow.platform import Platform

logger = logging.getLogger("stratoflow.events")


class EventHandler(Protocol):
    """What the automations engine offers the stream (`AutomationEngine(platform)`)."""

    def handle(self, events: Sequence[Event], now: datetime | None = None) -> Any: ...


@runtime_checkable
class BatchScoped(Protocol):
    """An engine that can hold what it reads for the length of a batch
    (`AutomationEngine.batch`: its automations, listed once instead of per record)."""

    def batch(self) -> contextlib.AbstractContextManager[None]: ...


EngineFactory = Callable[["Platform"], EventHandler]


def change_from_record(record: DynamoDBRecord) -> StreamChange:
    """A powertools stream record as the pure derivation reads it."""
    body = record.dynamodb
    if body is None or record.event_name is None:
        raise ValueError(f"Stream record {record.event_id!r} has no dynamodb body or event name")
    return StreamChange(
        event_name=record.event_name.name,  # type: ignore[arg-type]
        new_image=body.new_image or None,
        old_image=body.old_image or None,
        sequence_number=body.sequence_number,
        approximate_time=_approximate_time(body.get("ApproximateCreationDateTime")),
    )


def _approximate_time(raw: Any) -> datetime | None:
    """Epoch seconds in a Lambda event; a datetime in boto3's GetRecords response (what
    the local runtime hands over)."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        return raw.astimezone(UTC)
    return datetime.fromtimestamp(float(raw), tz=UTC)


class StreamProcessor:
    """Handles one record at a time: derive, store, pass to the engine."""

    def __init__(
        self,
        store: EventStoreLike,
        engine: EventHandler | None,
        waits: EventHandler | None = None,
        *,
        store_flow_run_events: bool = True,
        store_task_run_events: bool = True,
        store_heartbeat_events: bool = True,
    ) -> None:
        self.store = store
        self.engine = engine
        self.waits = waits
        """Flow runs waiting for events (`stratoflow.wait_for_event`): handed the whole
        batch's events at its end (`deliver_waits`), one Query per event name."""
        self._for_waits: list[Event] = []
        self.store_flow_run_events = store_flow_run_events
        """Off: flow runs' state events are handed on, not stored (derived on read)."""
        self.store_task_run_events = store_task_run_events
        """Off: task runs' state events are handed on, not stored (derived on read)."""
        self.store_heartbeat_events = store_heartbeat_events
        """Off: flow runs' heartbeat events are handed on, not stored."""

    def __call__(self, record: DynamoDBRecord) -> int:
        try:
            change = change_from_record(record)
            events = derive_events(change)
            for event in events:
                if self._stores(change, event):
                    self.store.put(event, derived=True)  # False: stored before (a replay)
            if events and self.engine is not None:
                self.engine.handle(events, now=None)
            if events and self.waits is not None:
                self._for_waits.extend(events)
        except Exception:
            keys = record.dynamodb.get("Keys") if record.dynamodb is not None else None
            logger.exception(
                "Stream record %s (%s, keys %s) failed; it is reported as a batch item failure",
                record.dynamodb.sequence_number if record.dynamodb is not None else None,
                record.get("eventName"),
                keys,
            )
            raise
        return len(events)

    def _stores(self, change: StreamChange, event: Event) -> bool:
        """Whether `event`, derived from `change`, is stored (every one is handed on)."""
        if is_event_item(change):
            return False  # an emitted event: its item is the stored event
        if is_task_run_item(change):
            return self.store_task_run_events
        if event.event == HEARTBEAT_EVENT:  # on a heartbeat item, or an older run item
            return self.store_heartbeat_events
        if is_flow_run_item(change):
            return self.store_flow_run_events
        return True

    def deliver_waits(self) -> None:
        """Hand the batch's events to the waiting runs (a failure fails the invocation,
        and the batch is delivered again: delivering an event twice resumes a run once)."""
        events, self._for_waits = self._for_waits, []
        if events and self.waits is not None:
            self.waits.handle(events, now=None)


def process_stream_batch(
    records: Iterable[Mapping[str, Any]],
    platform: Platform,
    *,
    engine_factory: EngineFactory | None,
    store: EventStoreLike | None = None,
) -> dict[str, Any]:
    """Process stream records (the `Records` of a Lambda event); returns the partial
    batch response `{"batchItemFailures": [{"itemIdentifier": <sequence number>}, ...]}`.

    `engine_factory(platform)` builds the automations engine once per batch (None: no
    automations, events are only derived and stored).
    """
    batch = [dict(r) for r in records]
    if not batch:  # powertools rejects an empty batch
        return {"batchItemFailures": []}
    if store is None:
        backend = platform.backend
        store = EventStore(
            backend.dynamodb,
            backend.table,
            retention_days=platform.settings.event_retention_days,
            clock=platform.services.clock,
        )
    engine = engine_factory(platform) if engine_factory is not None else None
    handle = StreamProcessor(
        store,
        engine,
        EventWaits(platform),
        store_flow_run_events=platform.settings.store_flow_run_events,
        store_task_run_events=platform.settings.store_task_run_events,
        store_heartbeat_events=platform.settings.store_heartbeat_events,
    )
    processor = BatchProcessor(
        event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
    )
    scope = engine.batch() if isinstance(engine, BatchScoped) else contextlib.nullcontext()
    with scope:
        response = process_partial_response(
            event={"Records": batch},
            record_handler=handle,
            processor=processor,
        )
    handle.deliver_waits()
    return dict(response)
