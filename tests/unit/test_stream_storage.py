"""Which derived events the stream handler stores (StreamProcessor): every one is handed
to the automations and to the waiting runs; flow-run and task-run state events and
heartbeats are stored only when their setting asks, the others always, and an emitted
event's item is not stored again."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from stratoflow.backends.aws.heartbeats import heartbeat_item
from stratoflow.backends.aws.items import flow_run_to_item, task_run_to_item, to_item
from stratoflow.deployments.models import BundleInfo, Deployment
from stratoflow.events.models import Event, Resource
from stratoflow.events.store import MemoryEventStore, event_to_item
from stratoflow.events.stream import StreamProcessor
from stratoflow.models import FlowRun, TaskRun
from stratoflow.orchestration.transitions import apply_transition
from stratoflow.states import Pending, Running, Scheduled
from tests._time import anchor

T0 = anchor()


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, events: Sequence[Event], now: datetime | None = None) -> None:
        self.events.extend(events)


def record(name: str, new: dict[str, Any], old: dict[str, Any] | None = None) -> DynamoDBRecord:
    """A low-level item's change as Lambda delivers it (binary values in base64)."""

    def encode(value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return base64.b64encode(value).decode()
        raise TypeError(type(value))

    body: dict[str, Any] = {"Keys": {k: new[k] for k in ("pk", "sk")}, "NewImage": new}
    if old is not None:
        body["OldImage"] = old
    body["SequenceNumber"] = "1"
    return DynamoDBRecord(
        json.loads(json.dumps({"eventName": name, "dynamodb": body}, default=encode))
    )


def changes() -> dict[str, DynamoDBRecord]:
    run = FlowRun(id="run-1", name="brave-otter", flow_name="etl", created=T0, state=Scheduled())
    run.version = 1
    scheduled = flow_run_to_item(run)
    apply_transition(run, Pending())
    pending = flow_run_to_item(run)
    legacy_beat = {**pending, "heartbeat": {"S": (T0 + timedelta(seconds=10)).isoformat()}}
    task = TaskRun(
        id="t-1", name="t-0", task_key="t", dynamic_key="0", task_name="t", flow_run_id=run.id
    )
    task_before = task_run_to_item(task)
    apply_transition(task, Running())
    emitted = Event(event="acme.tick", resource=Resource.of("acme.clock"), occurred=T0)
    deployment = Deployment(
        name="etl-nightly",
        entrypoint="flows.py:etl",
        flow_name="etl",
        bundle=BundleInfo(bucket="b", key="k.zip", sha256="0" * 64),
        created=T0,
        updated=T0,
    )
    return {
        "flow-run": record("MODIFY", pending, scheduled),
        "task-run": record("MODIFY", task_run_to_item(task), task_before),
        "heartbeat": record("INSERT", heartbeat_item(run, T0 + timedelta(seconds=5))),
        "legacy heartbeat": record("MODIFY", legacy_beat, pending),
        "deployment": record(
            "INSERT",
            to_item(
                {
                    "pk": "DEPLOYMENT#etl-nightly",
                    "sk": "META",
                    "definition": deployment.model_dump_json(),
                }
            ),
        ),
        "emitted": record(
            "INSERT", event_to_item(emitted, derived=False, retention=timedelta(days=7))
        ),
    }


@pytest.mark.parametrize(
    ("settings", "stored"),
    [
        ({}, {"deployment"}),
        ({"store_flow_run_events": True}, {"deployment", "flow-run"}),
        ({"store_task_run_events": True}, {"deployment", "task-run"}),
        ({"store_heartbeat_events": True}, {"deployment", "heartbeat", "legacy heartbeat"}),
    ],
)
def test_what_is_stored_follows_the_settings(settings: dict[str, bool], stored: set[str]) -> None:
    flags = {
        "store_flow_run_events": False,
        "store_task_run_events": False,
        "store_heartbeat_events": False,
        **settings,
    }
    for kind, change in changes().items():
        store, engine, waits = MemoryEventStore(), Recorder(), Recorder()
        processor = StreamProcessor(store, engine, waits, **flags)
        assert processor(change) >= 1, kind
        processor.deliver_waits()
        assert engine.events and engine.events == waits.events, kind  # handed on, always
        kept = store.query(T0 - timedelta(days=1), limit=100)
        assert bool(kept) == (kind in stored), kind
        if kept:
            assert {e.id for e in kept} == {e.id for e in engine.events}, kind
