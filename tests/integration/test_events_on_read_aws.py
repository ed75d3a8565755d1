"""Flow-run state events on the AWS backend (moto) when they are not stored (the default):
a deployed run, retried once, run through the worker entry point; its table's stream
records processed as the automations function does. Its events reach the automations,
no `EVENT#` item holds them, and `strato events ls` derives them from the run, the
same as the stream's. Opted in (STRATOFLOW_STORE_FLOW_RUN_EVENTS) they are stored, with
the same ids. A garbled flow-run item does not break the listing."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stratoflow import resources
from stratoflow.backends.aws import AwsBackend
from stratoflow.backends.aws.items import from_item, to_item
from stratoflow.cli import app
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.runs import run_deployment
from stratoflow.events.derive import flow_run_state_events
from stratoflow.events.documents import document_of
from stratoflow.events.models import Event
from stratoflow.events.stream import process_stream_batch
from stratoflow.models import FlowRun
from stratoflow.platform import Platform, build_platform
from stratoflow.run_ids import new_flow_run_id
from stratoflow.settings import get_settings, load_settings
from stratoflow.states import Completed, Pending, Running, Scheduled, StateType, Suspended
from stratoflow.workers.execute import execute_flow_run
from tests.integration._deploy_fixtures import Installation, installation, messages  # noqa: F401

FLOWS = """
    from pathlib import Path

    from stratoflow import flow, task


    @task
    def double(x: int) -> int:
        return 2 * x


    @flow(retries=1)
    def doubled(x: int, marker: str) -> int:
        # The first attempt fails once: the run is retried through its queue.
        first_attempt = Path(marker)
        if not first_attempt.exists():
            first_attempt.write_text("failed once")
            raise RuntimeError("the first attempt fails")
        return double(x)
"""

CONFIG = """
    deployments:
      - {name: doubled, entrypoint: "flows.py:doubled"}
"""


class RecordingEngine:
    """Stands in for `AutomationEngine(platform)`: records what the stream hands it."""

    handed: list[Event] = []

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def handle(self, events: Sequence[Event], now: datetime | None = None) -> None:
        RecordingEngine.handed.extend(events)


def stream_records(installation: Installation) -> list[dict[str, Any]]:
    """Every record the table's stream holds, as GetRecords returns them (what the
    local runtime hands to process_stream_batch)."""
    streams = installation.session.client(
        "dynamodbstreams",
        # botocore would address an account endpoint moto does not serve
        endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com",
    )
    table = installation.session.client("dynamodb").describe_table(TableName="stratoflow")
    arn = table["Table"]["LatestStreamArn"]
    found: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        found += [{**record, "eventSourceARN": arn} for record in records]
    return found


def stored_events(installation: Installation) -> list[Event]:
    items = installation.session.client("dynamodb").scan(TableName="stratoflow")["Items"]
    return [
        Event.model_validate_json(document_of(item))
        for item in items
        if item["pk"]["S"].startswith(resources.EVENT_PARTITION_PREFIX)
    ]


def run_item(installation: Installation, run_id: str) -> dict[str, Any]:
    backend = installation.services.backend
    assert isinstance(backend, AwsBackend)
    item = backend.dynamodb.get_item(
        TableName=backend.table, Key=to_item(resources.flow_run_key(run_id))
    )["Item"]
    return from_item(item)


def strato_events(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["events", "ls", "--since", "2d", "--json", *args])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def a_retried_deployed_run(installation: Installation, tmp_path: Path) -> FlowRun:
    root = tmp_path / "project"
    root.mkdir()
    (root / "flows.py").write_text(textwrap.dedent(FLOWS).lstrip())
    (root / "stratoflow.yaml").write_text(textwrap.dedent(CONFIG).lstrip())
    deploy_project(root)
    run = run_deployment("doubled", {"x": 21, "marker": str(tmp_path / "first")}, timeout=0)
    (message,) = messages(installation.receive())
    assert execute_flow_run(message.flow_run_id).name == "AwaitingRetry"
    (retry,) = messages(installation.receive(after=1))
    assert execute_flow_run(retry.flow_run_id).type is StateType.COMPLETED
    return run


def is_state_event(event: Event, run: FlowRun) -> bool:
    return (
        event.resource.id == f"stratoflow.flow-run.{run.id}"
        and event.event != "stratoflow.flow-run.heartbeat"
    )


def test_a_deployed_runs_state_events_are_derived_on_read_and_stored_when_asked(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = a_retried_deployed_run(installation, tmp_path)
    records = stream_records(installation)
    RecordingEngine.handed = []

    response = process_stream_batch(records, installation.platform, engine_factory=RecordingEngine)

    assert response == {"batchItemFailures": []}
    streamed = [e for e in RecordingEngine.handed if is_state_event(e, run)]
    names = [e.event.removeprefix("stratoflow.flow-run.") for e in streamed]
    assert names[:3] == ["Scheduled", "Pending", "Running"]
    assert "AwaitingRetry" in names and names[-1] == "Completed"
    # Handed to the automations, not stored.
    assert not [
        e for e in stored_events(installation) if e.event.startswith("stratoflow.flow-run.")
    ]

    # Derived from the run's item: the stream's events, exactly.
    derived = flow_run_state_events(run_item(installation, run.id))
    assert derived == streamed

    # Listed by `strato events ls`, with and without --flow-run, and by name.
    listed = [Event.model_validate(d) for d in strato_events()]
    assert sorted((e for e in listed if is_state_event(e, run)), key=lambda e: e.id) == sorted(
        streamed, key=lambda e: e.id
    )
    assert [e.occurred for e in listed] == sorted((e.occurred for e in listed), reverse=True)
    of_run = strato_events("--flow-run", run.id)
    assert {d["id"] for d in of_run} >= {e.id for e in streamed}
    assert any(d["event"] == "stratoflow.task-run.Completed" for d in of_run)
    [completed] = strato_events("--name", "stratoflow.flow-run.Completed")
    assert completed["id"] == streamed[-1].id
    assert strato_events("--resource", "stratoflow.deployment.", "--name", "stratoflow.flow-") == []
    assert len(strato_events("--limit", "2")) == 2

    # Opted in: the same events are stored, with the same ids, and listed once.
    monkeypatch.setenv("STRATOFLOW_STORE_FLOW_RUN_EVENTS", "true")
    get_settings.cache_clear()
    process_stream_batch(
        records, build_platform(installation.services, load_settings()), engine_factory=None
    )
    stored = [e for e in stored_events(installation) if is_state_event(e, run)]
    assert sorted(e.id for e in stored) == sorted(e.id for e in streamed)
    assert sorted(
        d["id"]
        for d in strato_events()
        if d["resource"]["labels"]["stratoflow.resource.id"] == f"stratoflow.flow-run.{run.id}"
    ) == sorted(e.id for e in streamed)
    # Turned off again: stored and derived, each listed once.
    monkeypatch.setenv("STRATOFLOW_STORE_FLOW_RUN_EVENTS", "false")
    get_settings.cache_clear()
    ids = [d["id"] for d in strato_events()]
    assert len(ids) == len(set(ids)) and set(ids) >= {e.id for e in streamed}


def put_item(installation: Installation, values: dict[str, Any]) -> None:
    installation.session.client("dynamodb").put_item(TableName="stratoflow", Item=to_item(values))


def test_a_garbled_flow_run_item_does_not_break_the_listing(installation: Installation) -> None:
    backend = installation.services.backend
    good = FlowRun(id=new_flow_run_id("default"), name="good", flow_name="etl", state=Scheduled())
    backend.create_flow_run(good)
    for state in (Pending(), Running(), Completed()):
        backend.set_flow_run_state(good.id, state)
    now = datetime.now(UTC)
    index = resources.BY_STATE
    # What a worker could write in its run's item (its role may): garbage where the
    # state, its history and its version are, each in a state partition the reader reads.
    for n, garbage in enumerate(
        [
            {"state": "garbage"},
            {"state": {"type": "RUNNING", "name": "x" * 5000, "timestamp": now.isoformat()}},
            {
                "state": {"type": "RUNNING", "name": "Running", "timestamp": now.isoformat()},
                "state_history_z": b"\x78\x9c not zlib",
                "version": 3,
            },
            {"state": {"type": "RUNNING", "name": "Running", "timestamp": "soon"}},
        ]
    ):
        put_item(
            installation,
            {
                **resources.flow_run_key(f"garbled-{n}"),
                "name": "garbled",
                index.partition_key: resources.state_partition(
                    ("COMPLETED", "RUNNING", "SCHEDULED", "PAUSED")[n]
                ),
                index.sort_key: now.isoformat(),
                **garbage,
            },
        )
    # An item of another kind carrying the index's attributes is not a run at all.
    put_item(
        installation,
        {
            resources.PARTITION_KEY: f"FLOWRUN#{good.id}",
            resources.SORT_KEY: "TASKRUN#x",
            index.partition_key: resources.state_partition("RUNNING"),
            index.sort_key: now.isoformat(),
            "state": {"type": "RUNNING", "name": "Running", "timestamp": now.isoformat()},
            "version": 1,
        },
    )

    listed = strato_events()

    assert sorted(d["event"] for d in listed) == sorted(
        f"stratoflow.flow-run.{s}" for s in ("Scheduled", "Pending", "Running", "Completed")
    )
    assert {d["resource"]["labels"]["stratoflow.resource.id"] for d in listed} == {
        f"stratoflow.flow-run.{good.id}"
    }


def test_changed_runs_are_read_from_the_state_index(installation: Installation) -> None:
    backend = installation.services.backend
    assert isinstance(backend, AwsBackend)
    now = datetime.now(UTC)

    def run_in(name: str, *states: Any) -> FlowRun:
        run = FlowRun(id=new_flow_run_id("default"), name=name, flow_name="etl")
        backend.create_flow_run(run)
        for state in states:
            backend.set_flow_run_state(run.id, state, force=True)
        return run

    def at(state: Any, minutes: float) -> Any:
        state.timestamp = now + timedelta(minutes=minutes)
        return state

    ended_before = run_in("ended-before", at(Running(), -90), at(Completed(), -60))
    ended_after = run_in("ended-after", at(Running(), -90), at(Completed(), -10))
    running = run_in("running", at(Running(), -5))
    # Entered Scheduled long ago, to start in a week: read whatever its times.
    waiting = run_in(
        "waiting", at(Scheduled(scheduled_time=(now + timedelta(days=7)).isoformat()), -600)
    )
    paused = run_in(
        "paused",
        at(Running(), -600),
        at(Suspended(pause_timeout=(now + timedelta(hours=1)).isoformat()), -500),
    )

    changed = list(backend.list_flow_runs_changed_since(now - timedelta(minutes=30)))

    names = [run.item["name"] for run in changed]
    # The runs that are not final first, whatever their times (STATE#ACTIVE is read
    # whole), then the final ones latest change first, from the moment on.
    assert set(names[:3]) == {"waiting", "paused", "running"}
    assert [run.changed for run in changed[:3]] == [None, None, None]
    assert names[3:] == ["ended-after"]
    assert changed[3].changed == now - timedelta(minutes=10)
    assert "state_history_z" in changed[3].item  # what the events are derived from
    assert ended_before.id not in {r.item["pk"].removeprefix("FLOWRUN#") for r in changed}
    assert {ended_after.id, running.id, waiting.id, paused.id} == {
        r.item["pk"].removeprefix("FLOWRUN#") for r in changed
    }
