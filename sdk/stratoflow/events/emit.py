"""`emit_event`: your own events, next to the ones stratoflow derives (as Prefect's).

    from stratoflow import emit_event

    emit_event(
        "acme.model.trained",
        resource={"stratoflow.resource.id": "acme.model.churn"},
        payload={"auc": 0.91},
    )

With the AWS backend the event is written to the state table (`EVENT#<id>`); the table's
stream delivers it to the automations Lambda, and `strato events ls` lists it. With the
in-process backend it is kept in memory, with that backend (`local_event_store()`).
Called inside a flow or task run, the event is related to that run, its flow and tags.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from stratoflow.events import labels
from stratoflow.events.label_names import RESOURCE_ID, RESOURCE_ROLE
from stratoflow.events.models import Event, Resource, own_label_names
from stratoflow.exceptions import StratoflowError

if TYPE_CHECKING:
    from stratoflow.context import Services
    from stratoflow.events.store import EventStoreLike, MemoryEventStore

MAX_DOCUMENT_BYTES = 256 * 1024
"""An event's JSON document must fit comfortably in one DynamoDB item (400 KB)."""

ResourceInput = Mapping[str, str] | Resource


class InvalidEventError(StratoflowError, ValueError):
    """An event that cannot be emitted: no name, no resource id, a payload that is not JSON."""


_local_stores: weakref.WeakKeyDictionary[object, MemoryEventStore] = weakref.WeakKeyDictionary()
_local_lock = threading.Lock()


def local_event_store(services: Services | None = None) -> MemoryEventStore:
    """The events emitted with the in-process backend of `services` (default: the current
    ones): one store per backend, so each `stratoflow_test_harness` starts empty."""
    from stratoflow.context import get_services
    from stratoflow.events.store import MemoryEventStore

    backend = (services or get_services()).backend
    with _local_lock:
        store = _local_stores.get(backend)
        if store is None:
            store = _local_stores[backend] = MemoryEventStore()
    return store


def event_store_for(services: Services) -> EventStoreLike:
    """The event store of `services`: the state table with the AWS backend, else this
    process's memory store."""
    from stratoflow.backends.aws.backend import AwsBackend
    from stratoflow.events.store import EventStore
    from stratoflow.settings import get_settings

    backend = services.backend
    if isinstance(backend, AwsBackend):
        return EventStore(
            backend.dynamodb,
            backend.table,
            retention_days=get_settings().event_retention_days,
            clock=services.clock,
        )
    return local_event_store(services)


def _resource(value: Any, what: str) -> Resource:
    if isinstance(value, Resource):
        return value
    if not isinstance(value, Mapping):
        raise InvalidEventError(
            f"The {what} must be a dict of labels or a Resource, got {type(value).__name__}."
        )
    try:
        value = own_label_names(value)  # `prefect.resource.id` is `stratoflow.resource.id`
    except ValueError as exc:
        raise InvalidEventError(f"The {what} is invalid: {exc}.") from None
    if not value.get(RESOURCE_ID):
        raise InvalidEventError(
            f"The {what} needs the label {RESOURCE_ID!r}, e.g. "
            f"{{{RESOURCE_ID!r}: 'acme.model.churn'}} (got {dict(value)!r})."
        )
    bad = {k: v for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise InvalidEventError(f"The labels of the {what} must be strings, got {bad!r}.")
    return Resource(labels=dict(value))


def _related_of_run_context() -> list[Resource]:
    """The flow run or task run this is called from, its flow and tags (if any)."""
    from stratoflow.context import flow_run_context, task_run_context

    found: list[Resource] = []
    task_ctx = task_run_context.get()
    flow_ctx = flow_run_context.get()
    if task_ctx is not None:
        task_run = task_ctx.task_run
        found += [labels.task_run(task_run.id, task_run.name), labels.task(task_run.task_name)]
        found += [labels.tag(t) for t in task_run.tags]
        if flow_ctx is None and task_ctx.flow_run_context is not None:
            flow_ctx = task_ctx.flow_run_context
    if flow_ctx is not None:
        run = flow_ctx.flow_run
        found += [labels.flow_run(run.id, run.name), labels.flow(run.flow_name)]
        if run.deployment_name:
            found.append(labels.deployment(run.deployment_name))
        found += [labels.tag(t) for t in run.tags]
    return found


def build_event(
    event: str,
    resource: ResourceInput,
    related: Sequence[ResourceInput] | None = None,
    payload: Mapping[str, Any] | None = None,
    *,
    occurred: datetime | None = None,
) -> Event:
    """A validated Event (every problem as one InvalidEventError)."""
    if not isinstance(event, str) or not event.strip():
        raise InvalidEventError(
            f"An event needs a name such as 'acme.model.trained' (got {event!r})."
        )
    main = _resource(resource, "resource")
    given = [_resource(r, f"related resource #{i + 1}") for i, r in enumerate(related or ())]
    for index, entry in enumerate(given):
        if not entry.role:
            raise InvalidEventError(
                f"Related resource #{index + 1} ({entry.id!r}) needs a "
                f"{RESOURCE_ROLE!r} label, e.g. 'model' or 'dataset'."
            )
    seen = {r.id for r in given}
    related_all = given + [r for r in _related_of_run_context() if r.id not in seen]
    body = dict(payload or {})
    try:
        json.dumps(body)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"The payload of {event!r} must be JSON: {exc}") from None
    values: dict[str, Any] = {
        "event": event,
        "resource": main,
        "related": tuple(_unique(related_all)),
        "payload": body,
        "occurred": occurred or datetime.now(UTC),
    }
    try:
        built = Event(**values)
    except ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise InvalidEventError(f"Event {event!r} is invalid: {problems}") from None
    size = len(built.model_dump_json().encode())
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidEventError(
            f"Event {event!r} is {size} bytes as JSON; the limit is {MAX_DOCUMENT_BYTES}. "
            "Keep large data in S3 and put its key in the payload."
        )
    return built


def _unique(resources: list[Resource]) -> list[Resource]:
    seen: set[tuple[str, str | None]] = set()
    out: list[Resource] = []
    for entry in resources:
        key = (entry.id, entry.role)
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def emit_event(
    event: str,
    resource: ResourceInput,
    related: Sequence[ResourceInput] | None = None,
    payload: Mapping[str, Any] | None = None,
    *,
    occurred: datetime | None = None,
) -> Event | None:
    """Record that `event` happened to `resource`; returns the stored event.

    `resource` needs the label `stratoflow.resource.id`; each related resource also a
    `stratoflow.resource.role` (Prefect's `prefect.resource.id` and `prefect.resource.role`,
    and any `prefect.` label, are taken as their `stratoflow.` names). `occurred` defaults
    to now (the services' clock).
    Raises InvalidEventError (a ValueError) for bad input, before anything is written.
    """
    from stratoflow.context import get_services

    services = get_services()
    built = build_event(
        event, resource, related, payload, occurred=occurred or services.clock.now()
    )
    event_store_for(services).put(built, derived=False)
    return built
