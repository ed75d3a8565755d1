"""Finding 2 of issue 12, performed: a worker writes a run item (`FLOWRUN#evil` / META:
a key its IAM policy allows, see test_worker_table_policy.py) that carries the index
attributes and the document of a deployment, an automation, a work pool, a concurrency
limit, a bucket, a run or an event. No reader of the control plane acts on it, no
listing shows it, and the genuine definitions next to it still work
(docs/security.md, "Control-plane definitions are read only from their own items")."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from stratoflow import resources
from stratoflow.automations import (
    Automation,
    AutomationEngine,
    AutomationStore,
    DoNothing,
    EventTrigger,
    PauseDeployment,
    PauseWorkQueue,
    create_automation,
)
from stratoflow.backends.aws.items import to_item
from stratoflow.cli import app
from stratoflow.deployments.models import WorkPoolSpec
from stratoflow.deployments.store import UnknownDeployment
from stratoflow.events.emit import event_store_for
from stratoflow.events.models import Event, Resource
from stratoflow.scheduler import Scheduler
from stratoflow.states import StateType
from stratoflow.sweeps import sweep
from stratoflow.workers.registry import list_workers, record_heartbeat
from tests.integration._deploy_fixtures import (  # noqa: F401 - `installation` is a fixture
    START,
    Installation,
    installation,
    make_deployment,
)

pytestmark = pytest.mark.date_sensitive  # schedules, TTLs (tests/timeshift.py)

FAILED = "stratoflow.flow-run.Failed"
BY_TIME, BY_STATE = resources.BY_TIME, resources.BY_STATE
EVIL_ID = str(uuid.uuid4())
runner = CliRunner()


def inject(found: Installation, run_id: str, **attributes: Any) -> dict[str, str]:
    """Write, as a worker may, the run item `FLOWRUN#<run_id>` / META with `attributes`
    (index attributes and a forged document). Returns its key."""
    key = resources.flow_run_key(run_id)
    backend = found.services.backend
    backend.dynamodb.put_item(  # type: ignore[attr-defined]
        TableName=backend.table,  # type: ignore[attr-defined]
        Item=to_item({**key, **attributes}),
    )
    return key


def shown(key: dict[str, str]) -> str:
    """How the reader's warning names a foreign item."""
    return f"{key[resources.PARTITION_KEY]}/{key[resources.SORT_KEY]}"


def strato(*args: str) -> str:
    """What the command printed on stdout (the readers' warnings go to stderr)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_an_injected_deployment_is_never_scheduled_nor_listed(
    installation: Installation, caplog: pytest.LogCaptureFixture
) -> None:
    platform = installation.platform
    platform.deployments.put(make_deployment("genuine", "*/5 * * * *"))
    evil = make_deployment("evil", "* * * * *", parameters={"n": 10**6})
    keys = [
        inject(
            installation,
            "evil",
            name="evil",
            definition=evil.model_dump_json(),
            paused=False,
            **{BY_TIME.partition_key: resources.DEPLOYMENTS_PARTITION, BY_TIME.sort_key: "evil"},
        ),
        # A twin claiming the genuine name, with other parameters and a denser schedule.
        inject(
            installation,
            "twin",
            name="genuine",
            definition=make_deployment(
                "genuine", "* * * * *", parameters={"n": 1}
            ).model_dump_json(),
            **{BY_TIME.partition_key: resources.DEPLOYMENTS_PARTITION, BY_TIME.sort_key: "genuine"},
        ),
    ]

    with caplog.at_level(logging.WARNING, "stratoflow.backends.aws.own_keys"):
        report = Scheduler(platform).tick(installation.clock.now())

    assert report.errors == []
    assert report.deployments == 1 and report.created > 0
    backend = installation.services.backend
    assert backend.list_flow_runs_of_deployment("evil") == []
    runs = backend.list_flow_runs_of_deployment("genuine")
    assert len(runs) == report.created and all(r.parameters == {} for r in runs)
    # One warning per listing, naming both foreign items.
    warnings = [r.getMessage() for r in caplog.records if "deployment" in r.getMessage()]
    assert len(warnings) == 1 and all(shown(k) in warnings[0] for k in keys)
    assert [d.name for d in platform.deployments.list()] == ["genuine"]
    with pytest.raises(UnknownDeployment, match=r"'evil'\. Known: genuine\.$"):
        platform.deployments.get("evil")
    listing = strato("deployment", "ls")
    assert "genuine" in listing and "evil" not in listing


def test_an_injected_work_pool_is_not_listed(installation: Installation) -> None:
    platform = installation.platform
    platform.work_pools.put(WorkPoolSpec(name="serverless", type="lambda"))
    inject(
        installation,
        "evil",
        name="evil-pool",
        definition=WorkPoolSpec(name="evil-pool").model_dump_json(),
        **{BY_TIME.partition_key: resources.WORK_POOLS_PARTITION, BY_TIME.sort_key: "evil-pool"},
    )
    assert [p.name for p in platform.work_pools.list()] == ["default", "serverless"]
    listing = strato("work-pool", "ls")
    assert "serverless" in listing and "evil-pool" not in listing


def failed_event(run_id: str, at: timedelta) -> Event:
    return Event(
        event=FAILED,
        occurred=START + at,
        resource=Resource.of(
            {
                "stratoflow.resource.id": f"stratoflow.flow-run.{run_id}",
                "stratoflow.resource.name": run_id,
            }
        ),
    )


def test_an_injected_automation_is_never_evaluated_nor_listed(installation: Installation) -> None:
    platform = installation.platform
    platform.deployments.put(make_deployment("genuine"))
    genuine = create_automation(
        Automation(
            name="note failures", trigger=EventTrigger(expect=[FAILED]), actions=[DoNothing()]
        )
    )
    evil = Automation(
        id=EVIL_ID,
        name="pause everything",
        trigger=EventTrigger(expect=[FAILED]),
        actions=[
            PauseDeployment(deployment="genuine"),
            PauseWorkQueue(work_pool="default", work_queue="default"),
        ],
    )
    now = installation.clock.now().astimezone(UTC)
    inject(
        installation,
        "evil",
        entity="automation",
        id=EVIL_ID,
        name=evil.name,
        definition=evil.model_dump_json(),
        enabled=True,
        created=now.isoformat(),
        updated=now.isoformat(),
        **{BY_TIME.partition_key: resources.AUTOMATIONS_PARTITION, BY_TIME.sort_key: evil.name},
    )

    firings = AutomationEngine(platform).handle([failed_event("r1", timedelta())], now)

    assert [f.automation_name for f in firings] == ["note failures"]
    assert platform.deployments.get("genuine").paused is False
    assert platform.work_pools.get("default").queue("default").paused is False
    backend = installation.services.backend
    store = AutomationStore(backend.dynamodb, backend.table)  # type: ignore[attr-defined]
    assert [r.automation.id for r in store.list()] == [genuine.id]
    listing = json.loads(strato("automation", "ls", "--json"))
    assert [a["name"] for a in listing] == ["note failures"]


def test_an_injected_due_bucket_does_not_count_for_a_genuine_automation(
    installation: Installation,
) -> None:
    genuine = create_automation(
        Automation(
            name="note failures", trigger=EventTrigger(expect=[FAILED]), actions=[DoNothing()]
        )
    )
    assert genuine.id is not None
    now = installation.clock.now()
    forged = {"trigger": "trigger", "key": "trigger#", "count": 99, "version": 1}
    inject(
        installation,
        "evil",
        state=json.dumps(forged),
        **{
            BY_STATE.partition_key: resources.automation_due_partition(genuine.id),
            BY_STATE.sort_key: f"{(now - timedelta(hours=1)).isoformat()}#trigger#",
        },
    )
    backend = installation.services.backend
    store = AutomationStore(backend.dynamodb, backend.table)  # type: ignore[attr-defined]
    assert store.due_buckets(genuine.id, now) == []


def test_an_injected_concurrency_limit_is_not_listed(installation: Installation) -> None:
    concurrency = installation.services.concurrency
    concurrency.create("db", 2)
    backend = installation.services.backend
    limit = {"entity": "concurrency_limit", "limit": 0, "active": True, "version": 0}
    limit |= {"slot_decay_per_second": 0, "leases": {}, "decayed_slots": 0}
    inject(installation, "evil", name="evil", **limit)
    # Under the usage key of another limit (workers may write `CONCURRENCY#` items), a
    # whole limit is not a definition: not listed under either name
    # (test_concurrency_definition_trust.py performs the rest of that attack).
    backend.dynamodb.put_item(  # type: ignore[attr-defined]
        TableName=backend.table,  # type: ignore[attr-defined]
        Item=to_item({**resources.concurrency_key("other"), "name": "evil", **limit}),
    )
    assert [limit.name for limit in concurrency.list()] == ["db"]
    listing = strato("concurrency-limit", "ls")
    assert "db" in listing and "evil" not in listing


def test_an_injected_run_copy_is_neither_swept_nor_listed(installation: Installation) -> None:
    """A `TASKRUN#` item (also worker-writable) carrying a Running copy of a genuine
    Scheduled run in `by_state`: the zombie sweep would crash the genuine run."""
    platform = installation.platform
    platform.deployments.put(make_deployment("genuine"))
    now = installation.clock.now()
    Scheduler(platform).tick(now)
    backend = installation.services.backend
    run = backend.list_flow_runs_of_deployment("genuine")[0]
    item = backend.dynamodb.get_item(  # type: ignore[attr-defined]
        TableName=backend.table,  # type: ignore[attr-defined]
        Key=to_item(resources.flow_run_key(run.id)),
    )["Item"]
    old = (now - timedelta(hours=1)).astimezone(UTC).isoformat()
    item |= to_item(
        {
            **resources.task_run_key(None, "evil"),
            "state_type": "RUNNING",
            "state": {"type": "RUNNING", "name": "Running", "timestamp": old},
            "heartbeat": old,
            BY_STATE.partition_key: resources.state_partition("RUNNING"),
            BY_STATE.sort_key: f"{old}#{run.id}",
        }
    )
    backend.dynamodb.put_item(TableName=backend.table, Item=item)  # type: ignore[attr-defined]

    assert backend.list_flow_runs_by_state(StateType.RUNNING) == []
    assert sweep(platform, now).crashed == 0
    state = backend.read_flow_run(run.id).state
    assert state is not None and state.type is StateType.SCHEDULED


def test_a_run_item_with_times_that_are_not_times_stops_no_pass_of_the_tick(
    installation: Installation, caplog: pytest.LogCaptureFixture
) -> None:
    """The runs that are not final share `STATE#ACTIVE` and are ordered by their state's
    times when read: a worker that writes its own run's `scheduled_time` as garbage must
    not make the late and orphan passes fail for every other run."""
    platform = installation.platform
    platform.deployments.put(make_deployment("genuine"))
    now = installation.clock.now()
    Scheduler(platform).tick(now)
    backend = installation.services.backend
    genuine = backend.list_flow_runs_of_deployment("genuine")
    assert genuine
    evil = {"type": "SCHEDULED", "name": "Scheduled", "timestamp": now.isoformat()}
    garbled = str(uuid.uuid4())
    for run_id, details in (
        (EVIL_ID, json.dumps({"scheduled_time": "not a time"})),  # read, but no time
        (garbled, {"scheduled_time": "not even JSON text"}),  # not readable as a run
    ):
        inject(
            installation,
            run_id,
            name="evil",
            flow_name="evil",
            deployment_name="genuine",
            state_type="SCHEDULED",
            state=evil | {"details": details},
            **{BY_STATE.partition_key: resources.ACTIVE_RUNS_PARTITION, BY_STATE.sort_key: "x"},
        )

    with caplog.at_level(logging.WARNING, logger="stratoflow.backends.aws.flow_run_lists"):
        listed = backend.list_flow_runs_by_state(StateType.SCHEDULED)
        everything = backend.list_flow_runs()
        report = Scheduler(platform).tick(now + timedelta(minutes=20))

    assert {r.id for r in genuine} <= {r.id for r in listed}
    assert {EVIL_ID, garbled}.isdisjoint({r.id for r in listed})
    assert garbled not in {r.id for r in everything}
    assert report.errors == [] and report.late >= 1  # the genuine runs, due by then
    assert f"Flow run {EVIL_ID} left out of its state's listing" in caplog.text
    assert f"Flow run item FLOWRUN#{garbled} left out: not readable" in caplog.text


def test_injected_events_and_workers_are_not_listed(installation: Installation) -> None:
    platform = installation.platform
    now = installation.clock.now().astimezone(UTC)
    event = failed_event("r1", timedelta())
    inject(
        installation,
        "evil",
        id=event.id,
        document=event.model_dump_json(),
        **{
            BY_TIME.partition_key: resources.events_day_partition(event.occurred.date()),
            BY_TIME.sort_key: f"{event.occurred.isoformat()}#{event.id}",
        },
    )
    store = event_store_for(installation.services)
    assert store.query(START - timedelta(hours=1), START + timedelta(hours=1)) == []
    record_heartbeat(
        platform,
        pool="default",
        name="w1",
        queues=["default"],
        running=0,
        limit=1,
        now=now,
        started=now,
    )
    inject(
        installation,
        "evil-worker",
        name="w2",
        pool="default",
        last_seen=now.isoformat(),
        expires_at=int((now + timedelta(minutes=5)).timestamp()),
        **{BY_TIME.partition_key: resources.WORKERS_PARTITION, BY_TIME.sort_key: "default#w2"},
    )
    assert [w.name for w in list_workers(platform, now=now)] == ["w1"]
