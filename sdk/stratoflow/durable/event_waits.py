"""`wait_for_event(...)`: a deployed flow run waits, without compute, for an event.

The run registers a waiter (`WAITER#<event name>` / `<run id>#<key>`, with a TTL at its
timeout) and suspends (`Suspended`, its pause details naming the event and the resource
it must be about). The stream handler (`EventWaits.handle`, run on every batch of events
the state table's stream derives or carries: emitted ones too) queries the waiters of each
event name in the batch, and for a run still suspended at that key whose own pause
details match the event, stores the event as the pause's response input and sends the
run back to its queue. The next attempt replays up to the wait, which returns the event.

Waiter items are writable by workers: a waiter is only a hint. What decides is the run's
own paused state (written by its pool's workers) and the namespace check of `enqueue`.
A wait that times out resumes the run with None (the scheduler tick's sweep).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.items import to_attribute
from stratoflow.events.patterns import labels_match
from stratoflow.exceptions import (
    ConflictError,
    InvalidTransitionError,
    ObjectNotFound,
    RunInputExists,
)
from stratoflow.models import RunInputRecord
from stratoflow.states import Resuming, StateType
from stratoflow.workers.ownership import namespace_problem

if TYPE_CHECKING:
    from stratoflow.events.models import Event
    from stratoflow.models import FlowRun
    from stratoflow.platform import Platform

logger = logging.getLogger("stratoflow.durable")

WAIT_EVENT = "wait_event"
WAIT_RESOURCE = "wait_resource"
ON_TIMEOUT = "pause_on_timeout"


def resource_matches(spec: Mapping[str, str], event: Event) -> bool:
    """Every label of `spec` is the event's resource's (`*` wildcards, as in triggers)."""
    return labels_match(spec, event.resource.labels)


def waits_for(run: FlowRun, key: str, event: Event) -> bool:
    """Whether `run` is suspended at `key` waiting for `event` (its own state decides)."""
    state = run.state
    if state is None or state.type is not StateType.PAUSED:
        return False
    details = state.details
    if details.get("pause_key") != key or details.get(WAIT_EVENT) != event.event:
        return False
    spec = details.get(WAIT_RESOURCE) or {}
    return isinstance(spec, dict) and resource_matches(
        {str(k): str(v) for k, v in spec.items()}, event
    )


def register_waiter(
    backend: Any, event_name: str, flow_run_id: str, key: str, expires: datetime | None
) -> None:
    """Record that the run waits at `key` for `event_name` (the AWS backend's table)."""
    dynamodb = getattr(backend, "dynamodb", None)
    if dynamodb is None:
        raise RuntimeError("wait_for_event needs the AWS backend (STRATOFLOW_BACKEND=aws).")
    names = resources.event_waiter_key(event_name, flow_run_id, key)
    item: dict[str, Any] = {
        **{k: to_attribute(v) for k, v in names.items()},
        "entity": {"S": "event_waiter"},
    }
    if expires is not None:  # DynamoDB's TTL removes a waiter left behind, a day later
        item[resources.TTL_ATTRIBUTE] = {"N": str(int(expires.timestamp()) + 86_400)}
    dynamodb.put_item(TableName=backend.table, Item=item)


class EventWaits:
    """Delivers the events of a stream batch to the runs waiting for them."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        backend = platform.backend
        self.dynamodb = backend.dynamodb
        self.table = backend.table

    def handle(self, events: Sequence[Event], now: datetime | None = None) -> int:
        """Deliver each event to the runs waiting for it; returns how many it resumed."""
        resumed = 0
        by_name: dict[str, list[Event]] = {}
        for event in events:
            by_name.setdefault(event.event, []).append(event)
        for name, named in by_name.items():
            for flow_run_id, key in self._waiters(name):
                for event in named:
                    if self._deliver(flow_run_id, key, event):
                        resumed += 1
                        break
        return resumed

    def _waiters(self, event_name: str) -> Iterable[tuple[str, str]]:
        partition = resources.event_waiter_key(event_name, "", "")[resources.PARTITION_KEY]
        paginator = self.dynamodb.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": resources.PARTITION_KEY},
            ExpressionAttributeValues={":pk": {"S": partition}},
        ):
            for item in page["Items"]:
                run_id, _, key = str(item[resources.SORT_KEY].get("S", "")).partition("#")
                if run_id and key:
                    yield run_id, key

    def _deliver(self, flow_run_id: str, key: str, event: Event) -> bool:
        backend = self.platform.services.backend
        try:
            run = backend.read_flow_run(flow_run_id)
        except ObjectNotFound:
            self._forget(event.event, flow_run_id, key)
            return False
        state = run.state
        if state is None or state.is_final():
            self._forget(event.event, flow_run_id, key)
            return False
        if state.type is StateType.RUNNING:
            # Registered, not suspended yet: leave the event as the wait's response; the
            # run checks it (against its own wait) when it suspends, and goes on.
            with contextlib.suppress(RunInputExists):
                self.platform.services.backend.run_inputs.create(
                    _response(run.id, key, event.model_dump_json(), self.platform)
                )
            self._forget(event.event, flow_run_id, key)
            return False
        if not waits_for(run, key, event):
            return False
        delivered = deliver_response(self.platform, run, key, event.model_dump_json())
        self._forget(event.event, flow_run_id, key)
        return delivered

    def _forget(self, event_name: str, flow_run_id: str, key: str) -> None:
        self.dynamodb.delete_item(
            TableName=self.table,
            Key={
                k: to_attribute(v)
                for k, v in resources.event_waiter_key(event_name, flow_run_id, key).items()
            },
        )


def deliver_response(platform: Platform, run: FlowRun, key: str, value_json: str) -> bool:
    """Store `value_json` as the response of the run's pause `key` (once: the first
    delivery wins) and send the suspended run back to its queue. Returns whether this
    call resumed it."""
    # Loaded when an event is delivered: the stream handler imports this module at start.
    from stratoflow.deployments.runs import enqueue

    problem = namespace_problem(run)
    if problem is not None:  # planted, or from before run ids carried their pool
        logger.warning("Not resumed: %s", problem)
        return False
    backend = platform.services.backend
    now = platform.services.clock.now()
    # Delivered before: the state change below may still be missing.
    with contextlib.suppress(RunInputExists):
        backend.run_inputs.create(_response(run.id, key, value_json, platform))
    try:
        backend.set_flow_run_state(
            run.id, Resuming("Resumed by an event."), expected_version=run.version
        )
    except (ConflictError, InvalidTransitionError, ClientError):
        return False  # it moved meanwhile (resumed by another delivery, cancelled)
    enqueue(platform, backend.read_flow_run(run.id), now=now)
    return True


def _response(flow_run_id: str, key: str, value_json: str, platform: Platform) -> RunInputRecord:
    return RunInputRecord(
        flow_run_id=flow_run_id,
        key=f"{key}-response",
        value=value_json,
        sender="stratoflow.event-wait",
        created=platform.services.clock.now(),
    )
