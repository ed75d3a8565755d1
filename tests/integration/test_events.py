"""Events on the AWS backend (moto): the event store, emit_event, the automations stream
handler fed with the records moto's DynamoDB stream holds for real writes, and
`strato events ls`."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from moto import mock_aws
from typer.testing import CliRunner

from stratoflow import emit_event, flow, resources, task
from stratoflow import platform as platform_module
from stratoflow.assets import add_asset_metadata, materialize
from stratoflow.automations.engine import AutomationEngine
from stratoflow.backends.aws import AwsBackend, build_aws_services
from stratoflow.backends.aws.items import to_item
from stratoflow.cli import app
from stratoflow.cli import common as cli_common
from stratoflow.clock import FakeClock
from stratoflow.context import Services, set_process_services
from stratoflow.deployments.models import BundleInfo, Deployment
from stratoflow.durable.event_waits import register_waiter
from stratoflow.events.derive import derive_events
from stratoflow.events.documents import document_of
from stratoflow.events.models import Event, Resource
from stratoflow.events.store import EventStore
from stratoflow.events.stream import change_from_record, process_stream_batch
from stratoflow.models import FlowRun, TaskRun
from stratoflow.platform import Platform, build_platform
from stratoflow.resources import provision
from stratoflow.run_ids import new_flow_run_id
from stratoflow.settings import get_settings, load_settings
from stratoflow.states import Completed, Pending, Running, Scheduled, Suspended
from tests._time import anchor

# TTLs, schedules or time windows: also run with the clock moved (tests/timeshift.py).
pytestmark = pytest.mark.date_sensitive

T0 = anchor()
STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/stratoflow/stream/2026-11-21T00:00:00.000"
)
HANDLER = Path(__file__).resolve().parents[2] / "functions" / "automations" / "handler.py"
_MODELS = botocore.loaders.create_loader()


@dataclass
class Aws:
    session: boto3.Session
    services: Services
    platform: Platform
    clock: FakeClock
    _seen: set[str] = field(default_factory=set)

    @property
    def backend(self) -> AwsBackend:
        assert isinstance(self.services.backend, AwsBackend)
        return self.services.backend

    @property
    def dynamodb(self) -> Any:
        return self.backend.dynamodb

    @property
    def store(self) -> EventStore:
        return EventStore(self.dynamodb, self.backend.table, clock=self.clock)

    def new_records(self, *, raw: bool = False) -> list[dict[str, Any]]:
        """The stream records written since the last call, shaped as Lambda delivers them
        (`raw`: as GetRecords returns them, which the local runtime hands over)."""
        streams = self.session.client(
            "dynamodbstreams",
            # botocore would address an account endpoint moto does not serve
            endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com",
        )
        table = self.session.client("dynamodb").describe_table(TableName="stratoflow")
        arn = table["Table"]["LatestStreamArn"]
        found: list[dict[str, Any]] = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for record in streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]:
                if record["eventID"] not in self._seen:
                    self._seen.add(record["eventID"])
                    shaped = {**record, "eventSourceARN": arn} if raw else lambda_record(record)
                    found.append(shaped)
        return found

    def event_items(self) -> list[dict[str, Any]]:
        items = self.session.client("dynamodb").scan(TableName="stratoflow")["Items"]
        return [i for i in items if i["pk"]["S"].startswith("EVENT#")]


def lambda_record(record: dict[str, Any]) -> dict[str, Any]:
    """A GetRecords record as the Lambda event source mapping delivers it: JSON, with the
    creation time in epoch seconds and binary values in base64."""
    body = dict(record["dynamodb"])
    body["ApproximateCreationDateTime"] = body["ApproximateCreationDateTime"].timestamp()

    def encode(value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return base64.b64encode(value).decode()
        raise TypeError(type(value))

    shaped = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {**body, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": STREAM_ARN,
    }
    return json.loads(json.dumps(shaped, default=encode))  # type: ignore[no-any-return]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    for name in list(os.environ):
        if name.startswith(("STRATOFLOW_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STRATOFLOW_BACKEND": "aws",
        "STRATOFLOW_HOME": str(tmp_path / "home"),
        "STRATOFLOW_LOG_TO_CONSOLE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with mock_aws():
        core = botocore.session.Session()
        core.register_component("data_loader", _MODELS)
        session = boto3.Session(botocore_session=core, region_name="us-east-1")
        provision(session)
        clock = FakeClock(T0)
        services = build_aws_services(load_settings(), session=session, clock=clock)
        previous = set_process_services(services)
        try:
            yield Aws(session, services, build_platform(services, get_settings()), clock)
        finally:
            services.backend.close()  # type: ignore[attr-defined]
            set_process_services(previous)
            get_settings.cache_clear()


class RecordingEngine:
    """Stands in for `AutomationEngine(platform)`: records what the stream hands it."""

    batches: list[list[Event]] = []

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def handle(self, events: Sequence[Event], now: datetime | None = None) -> None:
        RecordingEngine.batches.append(list(events))


@dataclass
class FakeLambdaContext:
    function_name: str = "stratoflow-automations"
    function_version: str = "$LATEST"
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:stratoflow-automations"
    )
    memory_limit_in_mb: int = 512
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name: str = "/aws/lambda/stratoflow-automations"
    log_stream_name: str = "2026/11/21/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_handler() -> Any:
    spec = importlib.util.spec_from_file_location("automations_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    """functions/automations/handler.py, its AutomationEngine replaced by a recorder."""
    module = load_handler()
    monkeypatch.setattr(module, "AutomationEngine", RecordingEngine)
    RecordingEngine.batches = []
    return module


def model_event(minutes: float, name: str = "acme.model.trained", **labels: str) -> Event:
    return Event(
        event=name,
        resource=Resource(labels={"stratoflow.resource.id": "acme.model.churn", **labels}),
        occurred=T0 + timedelta(minutes=minutes),
        payload={"auc": 0.9},
    )


# The store


def test_put_writes_one_item_with_index_keys_and_ttl(aws: Aws) -> None:
    event = model_event(0)
    assert aws.store.put(event, derived=False) is True
    assert aws.store.put(event, derived=True) is False  # the same id: nothing changes
    [item] = aws.event_items()
    assert item["pk"] == {"S": f"EVENT#{event.id}"}
    assert item["sk"] == {"S": "META"}
    assert item["event"] == {"S": "acme.model.trained"}
    assert item["derived"] == {"BOOL": False}
    assert item["gsi3pk"] == {"S": f"EVENTS#{T0:%Y-%m-%d}"}
    assert item["gsi3sk"] == {"S": f"{T0:%Y-%m-%d}T10:00:00.000000+00:00#{event.id}"}
    assert item["expires_at"] == {"N": str(int((T0 + timedelta(days=7)).timestamp()))}
    assert Event.model_validate_json(document_of(item)) == event
    assert len(item["document_z"]["B"]) < len(event.model_dump_json())  # stored compressed
    assert aws.store.get(event.id) == event


def test_query_pages_over_days_newest_first_with_filters(aws: Aws) -> None:
    store = aws.store
    day_before = model_event(-24 * 60, resource_name="old")
    runs = [
        model_event(m, name=f"stratoflow.flow-run.{state}")
        for m, state in ((1, "Running"), (2, "Completed"))
    ]
    other = Event(
        event="stratoflow.deployment.paused",
        resource=Resource.of("stratoflow.deployment.nightly"),
        occurred=T0 + timedelta(minutes=3),
    )
    for event in [day_before, *runs, other]:
        store.put(event, derived=True)
    since = T0 - timedelta(days=2)
    assert [e.id for e in store.query(since)] == [other.id, runs[1].id, runs[0].id, day_before.id]
    assert [e.id for e in store.query(since, T0 + timedelta(minutes=2))] == [
        runs[1].id,
        runs[0].id,
        day_before.id,
    ]
    assert store.query(T0 + timedelta(minutes=2), T0 + timedelta(minutes=2)) == [runs[1]]
    assert [e.id for e in store.query(since, name="stratoflow.flow-run.")] == [
        runs[1].id,
        runs[0].id,
    ]
    assert store.query(since, resource="stratoflow.deployment.") == [other]
    assert store.query(since, limit=2) == [other, runs[1]]
    assert store.query(T0 + timedelta(hours=1)) == []


def test_retention_comes_from_the_settings(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATOFLOW_EVENT_RETENTION_DAYS", "2")
    get_settings.cache_clear()
    event = emit_event("acme.model.trained", {"stratoflow.resource.id": "acme.model.churn"})
    assert event is not None
    [item] = aws.event_items()
    assert item["expires_at"] == {"N": str(int((T0 + timedelta(days=2)).timestamp()))}


# emit_event and the stream


def test_emit_event_writes_an_item_the_stream_hands_to_the_engine(aws: Aws, handler: Any) -> None:
    event = emit_event(
        "acme.model.trained",
        {"stratoflow.resource.id": "acme.model.churn", "stratoflow.resource.name": "churn"},
        payload={"auc": 0.91},
    )
    assert event is not None
    assert event.occurred == T0
    [item] = aws.event_items()
    assert item["derived"] == {"BOOL": False}
    records = aws.new_records()
    assert [r["eventName"] for r in records] == ["INSERT"]
    response = handler.handler({"Records": records}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert RecordingEngine.batches == [[event]]
    assert len(aws.event_items()) == 1  # a user event is not stored a second time


def test_an_emitted_event_wakes_the_run_waiting_for_it(aws: Aws, handler: Any) -> None:
    run = FlowRun(
        id=new_flow_run_id("default"),
        name="patient-heron",
        flow_name="etl",
        deployment_name="etl-nightly",
        work_pool_name="default",
        work_queue_name="default",
        created=T0,
    )
    aws.backend.create_flow_run(run)
    waiting = Suspended(
        "waiting",
        pause_key="event-0",
        pause_reschedule=True,
        wait_event="acme.model.trained",
        wait_resource={"stratoflow.resource.id": "acme.model.*"},
    )
    aws.backend.set_flow_run_state(run.id, waiting, force=True)
    register_waiter(aws.backend, "acme.model.trained", run.id, "event-0", None)
    aws.new_records()  # the run's own writes: not what this test feeds
    emit_event("acme.model.trained", {"stratoflow.resource.id": "acme.model.churn"})
    response = handler.handler({"Records": aws.new_records()}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert aws.backend.read_flow_run(run.id).state_name == "Resuming"
    stored = aws.backend.run_inputs.read(run.id, "event-0-response")
    assert stored is not None and json.loads(stored.value)["event"] == "acme.model.trained"


def write_a_run(aws: Aws) -> FlowRun:
    backend = aws.backend
    run = FlowRun(
        id="run-1",
        name="brave-otter",
        flow_name="etl",
        tags=("nightly",),
        deployment_name="etl-nightly",
        work_pool_name="default",
        work_queue_name="default",
        created=T0,
        state=Scheduled(),
    )
    run.state.timestamp = T0  # type: ignore[union-attr]
    backend.create_flow_run(run)
    for state in (Pending(), Running()):
        backend.set_flow_run_state(run.id, state)
    task = TaskRun(
        id="task-1",
        name="extract-0",
        task_key="extract",
        dynamic_key="0",
        task_name="extract",
        flow_run_id=run.id,
        created=T0,
    )
    backend.create_task_run(task)
    backend.set_task_run_state(task.id, Pending())
    backend.flush()
    # Running and Completed between two flushes: one write carries both.
    backend.set_task_run_state(task.id, Running())
    backend.set_task_run_state(task.id, Completed())
    backend.flush()
    backend.set_flow_run_state(run.id, Completed())
    return run


def deployment() -> Deployment:
    return Deployment(
        name="etl-nightly",
        entrypoint="flows.py:etl",
        flow_name="etl",
        bundle=BundleInfo(bucket="stratoflow-code", key="bundles/x.zip", sha256="0" * 64),
        created=T0,
        updated=T0,
    )


def stored_names(aws: Aws) -> list[str]:
    return sorted(e.event for e in aws.store.query(T0 - timedelta(days=1), limit=1000))


def test_stream_handler_derives_stores_and_hands_over_events(aws: Aws, handler: Any) -> None:
    write_a_run(aws)
    aws.platform.deployments.put(deployment())
    aws.platform.deployments.put(deployment().model_copy(update={"paused": True}))
    aws.platform.work_pools.set_queue_paused("default", "default", True)
    aws.dynamodb.put_item(
        TableName="stratoflow", Item=to_item({**resources.cache_key("k"), "value": "x"})
    )
    records = aws.new_records()
    assert {r["eventName"] for r in records} == {"INSERT", "MODIFY"}

    response = handler.handler({"Records": records}, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    run_events = [
        *(f"stratoflow.flow-run.{s}" for s in ("Scheduled", "Pending", "Running", "Completed")),
        *(f"stratoflow.task-run.{s}" for s in ("Pending", "Running", "Completed")),
    ]
    expected = sorted(
        [
            "stratoflow.deployment.created",
            "stratoflow.deployment.paused",
            "stratoflow.work-queue.paused",
        ]
    )
    # Runs' state events are handed to the engine, not stored
    # (STRATOFLOW_STORE_FLOW_RUN_EVENTS, STRATOFLOW_STORE_TASK_RUN_EVENTS).
    assert stored_names(aws) == expected
    handed = [e for batch in RecordingEngine.batches for e in batch]
    assert sorted(e.event for e in handed) == sorted([*expected, *run_events])
    completed = next(e for e in handed if e.event == "stratoflow.flow-run.Completed")
    assert completed.resource.id == "stratoflow.flow-run.run-1"
    assert {r.role for r in completed.related} == {
        "flow",
        "deployment",
        "work-queue",
        "work-pool",
        "tag",
    }
    assert completed.payload["intended"] == {"from": "RUNNING", "to": "COMPLETED"}

    # The derived events' own writes reach the stream too, and derive nothing.
    own = aws.new_records()
    assert len(own) == len(expected)
    RecordingEngine.batches = []
    assert handler.handler({"Records": own}, FakeLambdaContext()) == {"batchItemFailures": []}
    assert RecordingEngine.batches == []

    # The whole batch delivered again: the same events, stored once.
    count = len(aws.event_items())
    assert handler.handler({"Records": records}, FakeLambdaContext()) == {"batchItemFailures": []}
    assert len(aws.event_items()) == count
    assert aws.new_records() == []  # nothing was written


def test_task_run_events_are_stored_when_asked_and_derived_on_read_otherwise(
    aws: Aws, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = write_a_run(aws)
    records = aws.new_records()
    assert handler.handler({"Records": records}, FakeLambdaContext()) == {"batchItemFailures": []}
    assert not [n for n in stored_names(aws) if n.startswith("stratoflow.task-run.")]
    # `strato events ls --flow-run` shows them anyway, with the ids the stream gives them.
    shown = CliRunner().invoke(
        app, ["events", "ls", "--flow-run", run.id, "--since", "30d", "--json"]
    )
    assert shown.exit_code == 0, shown.output
    listed = json.loads(shown.stdout)
    names = sorted(e["event"] for e in listed)
    assert names == sorted(
        [
            *(f"stratoflow.flow-run.{s}" for s in ("Scheduled", "Pending", "Running", "Completed")),
            *(f"stratoflow.task-run.{s}" for s in ("Pending", "Running", "Completed")),
        ]
    )
    # Opted in: stored, with the same ids as derived on read.
    monkeypatch.setenv("STRATOFLOW_STORE_TASK_RUN_EVENTS", "true")
    get_settings.cache_clear()
    monkeypatch.setattr(platform_module, "_platform", None)  # rebuilt with the setting
    assert handler.handler({"Records": records}, FakeLambdaContext()) == {"batchItemFailures": []}
    stored = aws.store.query(T0 - timedelta(days=1), name="stratoflow.task-run.", limit=100)
    derived_ids = {e["id"] for e in listed if e["event"].startswith("stratoflow.task-run.")}
    assert {e.id for e in stored} == derived_ids


def test_heartbeats_reach_the_automations_and_are_stored_only_when_asked(
    aws: Aws, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = write_a_run(aws)
    aws.new_records()
    # A beat writes the run's heartbeat item, not the run's item (one write unit).
    for seconds in (10, 20):
        aws.backend.record_flow_run_heartbeat(run, T0 + timedelta(seconds=seconds))
    records = aws.new_records()
    assert [r["dynamodb"]["Keys"]["sk"]["S"] for r in records] == ["HEARTBEAT", "HEARTBEAT"]
    assert handler.handler({"Records": records}, FakeLambdaContext()) == {"batchItemFailures": []}
    handed = [e for batch in RecordingEngine.batches for e in batch]
    assert [e.event for e in handed] == ["stratoflow.flow-run.heartbeat"] * 2
    assert handed[0].resource.id == "stratoflow.flow-run.run-1"
    assert "stratoflow.flow-run.heartbeat" not in stored_names(aws)
    # Opted in: stored.
    monkeypatch.setenv("STRATOFLOW_STORE_HEARTBEAT_EVENTS", "true")
    get_settings.cache_clear()
    monkeypatch.setattr(platform_module, "_platform", None)  # rebuilt with the setting
    assert handler.handler({"Records": records}, FakeLambdaContext()) == {"batchItemFailures": []}
    assert stored_names(aws).count("stratoflow.flow-run.heartbeat") == 2


def test_a_poison_record_fails_alone(aws: Aws, handler: Any) -> None:
    write_a_run(aws)
    records = aws.new_records()
    flow_run_modifies = [
        r
        for r in records
        if r["eventName"] == "MODIFY" and r["dynamodb"]["Keys"]["sk"]["S"] == "META"
    ]
    poison = json.loads(json.dumps(flow_run_modifies[0]))
    poison["dynamodb"]["NewImage"]["state"] = {"S": "garbage"}
    batch = [r if r["eventID"] != poison["eventID"] else poison for r in records]

    response = handler.handler({"Records": batch}, FakeLambdaContext())

    assert response == {
        "batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]
    }
    names = {e.event for batch in RecordingEngine.batches for e in batch}
    assert "stratoflow.flow-run.Pending" not in names  # the poisoned record's event
    assert "stratoflow.flow-run.Completed" in names


def test_process_stream_batch_reads_get_records_output_and_may_skip_the_engine(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the local runtime does: GetRecords' records as they come (datetimes, bytes)."""
    monkeypatch.setenv("STRATOFLOW_STORE_FLOW_RUN_EVENTS", "true")  # to see them derived
    write_a_run(aws)
    records = aws.new_records(raw=True)
    assert isinstance(records[0]["dynamodb"]["ApproximateCreationDateTime"], datetime)
    platform = build_platform(aws.services, load_settings())
    response = process_stream_batch(records, platform, engine_factory=None)
    assert response == {"batchItemFailures": []}
    events = aws.store.query(T0 - timedelta(days=1), name="stratoflow.flow-run.Running")
    assert [e.event for e in events] == ["stratoflow.flow-run.Running"]
    assert process_stream_batch([], platform, engine_factory=None) == {"batchItemFailures": []}


def test_the_handler_runs_the_real_automations_engine(aws: Aws) -> None:
    """The handler's default wiring: AutomationEngine(platform) (no automations defined)."""
    write_a_run(aws)
    aws.platform.deployments.put(deployment())
    emit_event("acme.model.trained", {"stratoflow.resource.id": "acme.model.churn"})
    response = load_handler().handler({"Records": aws.new_records()}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert "stratoflow.deployment.created" in stored_names(aws)


def test_a_batch_lists_the_automations_once_not_once_per_record(aws: Aws) -> None:
    """The stream hands each record's events to the engine on their own; the engine
    lists the enabled automations once per batch (one Query, not one per record)."""
    write_a_run(aws)
    records = aws.new_records()
    listings: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        values = params.get("ExpressionAttributeValues") or {}
        if values.get(":p") == {"S": resources.AUTOMATIONS_PARTITION}:
            listings.append(params.get("IndexName", ""))

    events = aws.backend.dynamodb.meta.events
    events.register("provide-client-params.dynamodb.Query", count)
    try:
        response = process_stream_batch(records, aws.platform, engine_factory=AutomationEngine)
    finally:
        events.unregister("provide-client-params.dynamodb.Query", count)
    assert response == {"batchItemFailures": []}
    with_events = [r for r in records if derive_events(change_from_record(DynamoDBRecord(r)))]
    assert len(with_events) > 1
    assert listings == [resources.BY_TIME.name]


def test_asset_events_are_emitted_events_the_stream_hands_over(aws: Aws, handler: Any) -> None:
    @task(asset_deps=["s3://acme-data/raw/orders.parquet"])
    def extract() -> list[int]:
        return [1, 2, 3]

    @materialize("s3://acme-data/clean/orders.parquet", by="dbt")
    def clean(rows: list[int]) -> None:
        add_asset_metadata("s3://acme-data/clean/orders.parquet", {"rows": len(rows)})

    @flow
    def orders() -> None:
        clean(extract())

    orders()
    found = aws.store.query(T0 - timedelta(hours=1), name="stratoflow.asset.")
    by_name = {e.event: e for e in found}
    assert set(by_name) == {
        "stratoflow.asset.referenced",
        "stratoflow.asset.materialization.succeeded",
    }
    done = by_name["stratoflow.asset.materialization.succeeded"]
    assert done.resource.id == "s3://acme-data/clean/orders.parquet"
    assert done.payload == {"rows": 3}
    assert {(r.role, r.id) for r in done.related} >= {
        ("asset", "s3://acme-data/raw/orders.parquet"),
        ("asset-materialized-by", "dbt"),
        ("flow", "stratoflow.flow.orders"),
    }
    response = handler.handler({"Records": aws.new_records()}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    handed = {e.id for batch in RecordingEngine.batches for e in batch}
    assert {e.id for e in found} <= handed  # the automations see them
    result = strato("events", "ls", "--since", "1h", "--resource", "s3://acme-data/", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(d["event"] for d in json.loads(result.stdout)) == sorted(by_name)


# strato events ls


def strato(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_events_ls(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # A table row per line. The private attribute: setting `width` would leave it fixed
    # at its earlier value when monkeypatch restores it.
    monkeypatch.setattr(cli_common.out, "_width", 200)
    aws.store.put(model_event(-30), derived=False)
    aws.store.put(
        Event(
            event="stratoflow.flow-run.Failed",
            resource=Resource(
                labels={
                    "stratoflow.resource.id": "stratoflow.flow-run.run-9",
                    "stratoflow.resource.name": "sad-heron",
                }
            ),
            related=(Resource.of("stratoflow.flow.etl", role="flow", name="etl"),),
            occurred=T0 - timedelta(minutes=5),
        ),
        derived=True,
    )
    result = strato("events", "ls", "--since", "1h")
    assert result.exit_code == 0, result.output
    assert "stratoflow.flow-run.Failed" in result.output
    assert "acme.model.trained" in result.output
    assert "flow: etl" in result.output
    assert result.output.index("stratoflow.flow-run.Failed") < result.output.index("acme.model")

    result = strato(
        "events", "ls", "--since", f"{T0:%Y-%m-%d}T09:00", "--name", "stratoflow.", "--json"
    )
    assert result.exit_code == 0, result.output
    [document] = json.loads(result.stdout)
    assert document["event"] == "stratoflow.flow-run.Failed"
    assert document["resource"]["labels"]["stratoflow.resource.name"] == "sad-heron"

    result = strato("events", "ls", "--since", "1h", "--resource", "acme.", "--json")
    assert [d["event"] for d in json.loads(result.stdout)] == ["acme.model.trained"]

    result = strato("events", "ls", "--since", "10m")
    assert result.exit_code == 0 and "stratoflow.flow-run.Failed" in result.output
    assert "acme.model.trained" not in result.output

    next_day = T0 + timedelta(days=1)
    result = strato(
        "events", "ls", "--since", f"{next_day:%Y-%m-%d}", "--until", f"{next_day:%Y-%m-%d}T01:00"
    )
    assert result.exit_code == 0 and "No events" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is neither a duration"),
        (["--since", "1h", "--until", "2h"], "before it starts"),
    ],
)
def test_events_ls_bad_input_is_one_line(aws: Aws, args: list[str], message: str) -> None:
    result = strato("events", "ls", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
