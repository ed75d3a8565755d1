"""Where a flow run is listed (backends/aws/flow_run_lists.py): on `by_state` in
`STATE#ACTIVE` by its creation time while it is not final (its transitions rewrite that
entry in place), in `STATE#<type>` and on `by_time` and `by_deployment` from its first
final state on; every listing still shows every run once, in its order."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from _deploy_fixtures import Installation, installation, make_deployment  # noqa: F401

from stratoflow import runs
from stratoflow.backends.aws.flow_run_lists import EARLIER, LATEST
from stratoflow.backends.aws.items import from_item
from stratoflow.deployments.runs import schedule_flow_run
from stratoflow.models import FlowRun
from stratoflow.states import Completed, Pending, Running, Scheduled, State, StateType

# Runs are created at the installation's clock, listed back from the wall clock's day.
pytestmark = pytest.mark.date_sensitive

LISTING_KEYS = {"gsi1pk", "gsi1sk", "gsi3pk", "gsi3sk"}


def _item(found: Installation, run_id: str) -> dict[str, Any]:
    backend = found.services.backend
    raw = backend.dynamodb.get_item(  # type: ignore[attr-defined]
        TableName=backend.table,  # type: ignore[attr-defined]
        Key={"pk": {"S": f"FLOWRUN#{run_id}"}, "sk": {"S": "META"}},
        ConsistentRead=True,
    )["Item"]
    return from_item(raw)


def _scheduled(found: Installation, deployment: str, n: int) -> FlowRun:
    stored = found.platform.deployments.get(deployment)
    run, created = schedule_flow_run(
        found.platform,
        stored,
        scheduled_time=found.clock.now() + timedelta(minutes=5),
        parameters={"n": n},
    )
    assert created
    return run


def _move(found: Installation, run: FlowRun, *states: State) -> None:
    backend = found.services.backend
    for state in states:
        current = backend.read_flow_run(run.id)
        result = backend.set_flow_run_state(
            run.id,
            dataclasses.replace(state, timestamp=found.clock.now()),
            expected_version=current.version,
        )
        assert result.applied, result


def test_a_run_is_listed_by_time_and_deployment_once_it_is_final(installation: Installation):
    installation.platform.deployments.put(make_deployment("listed"))
    run = _scheduled(installation, "listed", 0)
    created = _item(installation, run.id)
    assert not LISTING_KEYS & set(created)
    assert (created["gsi2pk"], created["gsi2sk"]) == ("STATE#ACTIVE", created["created"])

    _move(installation, run, Pending(), Running())
    item = _item(installation, run.id)
    assert not LISTING_KEYS & set(item)
    # The same keys as at its creation: each transition rewrote the entry in place.
    assert (item["gsi2pk"], item["gsi2sk"]) == ("STATE#ACTIVE", created["created"])
    # Not on the creation-time indexes, yet listed by every listing.
    assert [r.id for r in runs.read_flow_runs()] == [run.id]
    assert [r.id for r in runs.query_flow_runs(deployment="listed")] == [run.id]
    assert [r.id for r in runs.query_flow_runs(state="running")] == [run.id]

    _move(installation, run, Completed())
    item = _item(installation, run.id)
    assert set(item) >= LISTING_KEYS
    assert item["gsi1pk"] == "DEPLOYMENT#listed"
    assert item["gsi3pk"].startswith("FLOWRUNS#")
    assert item["gsi1sk"] == item["gsi3sk"] == item["created"]
    assert [r.id for r in runs.read_flow_runs()] == [run.id]
    assert [r.id for r in runs.query_flow_runs(deployment="listed")] == [run.id]
    assert [r.id for r in runs.query_flow_runs(state="completed")] == [run.id]


def test_finished_and_active_runs_are_merged_newest_first(installation: Installation):
    installation.platform.deployments.put(make_deployment("mixed"))
    installation.platform.deployments.put(make_deployment("other"))
    made = []
    for index in range(6):
        run = _scheduled(installation, "mixed" if index != 3 else "other", index)
        made.append(run)
        installation.clock.advance(60)
    for finished in (made[0], made[2], made[5]):
        _move(installation, finished, Pending(), Running(), Completed())
    _move(installation, made[4], Pending())

    newest_first = [r.id for r in reversed(made)]
    assert [r.id for r in runs.read_flow_runs()] == newest_first
    assert [r.id for r in runs.read_flow_runs(limit=3)] == newest_first[:3]
    mixed = [r.id for r in reversed(made) if r.id != made[3].id]
    assert [r.id for r in runs.query_flow_runs(deployment="mixed", limit=None)] == mixed
    assert [r.id for r in runs.query_flow_runs(deployment="mixed", limit=2)] == mixed[:2]
    since = made[2].created
    assert since is not None
    assert [r.id for r in runs.query_flow_runs(since=since, limit=None)] == newest_first[:4]


def test_a_run_taken_back_out_of_a_final_state_is_listed_once(installation: Installation):
    installation.platform.deployments.put(make_deployment("again"))
    run = _scheduled(installation, "again", 0)
    _move(installation, run, Pending(), Running(), Completed())
    backend = installation.services.backend
    # A retry from scratch (the UI's): forced back to Scheduled, keeping its listing keys.
    backend.set_flow_run_state(
        run.id, dataclasses.replace(Scheduled(), timestamp=installation.clock.now()), force=True
    )
    item = _item(installation, run.id)
    assert set(item) >= LISTING_KEYS and item["gsi2pk"] == "STATE#ACTIVE"
    listed = runs.read_flow_runs()
    assert [r.id for r in listed] == [run.id]
    assert listed[0].state is not None and listed[0].state.name == "Scheduled"
    assert [r.id for r in runs.query_flow_runs(deployment="again")] == [run.id]


def test_active_runs_are_ordered_and_filtered_by_state_as_the_index_did(
    installation: Installation,
):
    installation.platform.deployments.put(make_deployment("ordered"))
    backend = installation.services.backend
    start = installation.clock.now()
    made = []
    for minutes in (30, 10, 20):  # created in this order, due in another
        run, _ = schedule_flow_run(
            installation.platform,
            installation.platform.deployments.get("ordered"),
            scheduled_time=start + timedelta(minutes=minutes),
        )
        made.append(run)
        installation.clock.advance(1)
    _move(installation, made[2], Pending())

    scheduled = backend.list_flow_runs_by_state(StateType.SCHEDULED)
    assert [r.id for r in scheduled] == [made[1].id, made[0].id]  # soonest due first
    due_soon = backend.list_flow_runs_by_state(
        StateType.SCHEDULED, until=start + timedelta(minutes=15)
    )
    assert [r.id for r in due_soon] == [made[1].id]
    later = backend.list_flow_runs_by_state(
        StateType.SCHEDULED, since=start + timedelta(minutes=15), limit=1
    )
    assert [r.id for r in later] == [made[0].id]
    assert [r.id for r in backend.list_flow_runs_by_state(StateType.PENDING)] == [made[2].id]
    assert backend.list_flow_runs_by_state(StateType.RUNNING) == []


def test_runs_written_in_the_earlier_layout_are_still_found(installation: Installation):
    """An item written before `STATE#ACTIVE`: in `STATE#<type>` and on every index from
    its creation. The sweeps and listings still find it, and its next transition moves it."""
    installation.platform.deployments.put(make_deployment("legacy"))
    run = _scheduled(installation, "legacy", 0)
    backend = installation.services.backend
    due = run.expected_start_time
    assert due is not None
    backend.dynamodb.update_item(  # type: ignore[attr-defined]
        TableName=backend.table,  # type: ignore[attr-defined]
        Key={"pk": {"S": f"FLOWRUN#{run.id}"}, "sk": {"S": "META"}},
        UpdateExpression="SET gsi2pk = :p, gsi2sk = :s, gsi3pk = :tp, gsi3sk = :ts, "
        "gsi1pk = :dp, gsi1sk = :ts",
        ExpressionAttributeValues={
            ":p": {"S": "STATE#SCHEDULED"},
            ":s": {"S": f"{due.isoformat()}#{run.id}"},
            ":tp": {"S": f"FLOWRUNS#{run.created.date().isoformat()}"},  # type: ignore[union-attr]
            ":ts": {"S": f"{run.created.isoformat()}#{run.id}"},  # type: ignore[union-attr]
            ":dp": {"S": "DEPLOYMENT#legacy"},
        },
    )

    assert [r.id for r in backend.list_flow_runs_by_state(StateType.SCHEDULED)] == [run.id]
    assert [r.id for r in runs.read_flow_runs()] == [run.id]
    assert [r.id for r in runs.query_flow_runs(deployment="legacy")] == [run.id]
    _move(installation, run, Pending())
    assert _item(installation, run.id)["gsi2pk"] == "STATE#ACTIVE"
    assert [r.id for r in backend.list_flow_runs_by_state(StateType.PENDING)] == [run.id]
    assert backend.list_flow_runs_by_state(StateType.SCHEDULED) == []


def test_within_a_snapshot_the_active_runs_are_read_once_and_only_when_asked(
    installation: Installation, monkeypatch: pytest.MonkeyPatch
):
    installation.platform.deployments.put(make_deployment("snap"))
    run = _scheduled(installation, "snap", 0)
    backend = installation.services.backend
    lists = backend.lists  # type: ignore[attr-defined]
    reads: list[tuple[str, ...]] = []
    read = lists._read
    monkeypatch.setattr(
        lists, "_read", lambda partitions: reads.append(partitions) or read(partitions)
    )

    with backend.active_runs_snapshot():
        assert reads == []  # nothing read until a listing asks (a static file, a POST)
        assert [r.id for r in runs.read_flow_runs()] == [run.id]
        assert [r.id for r in backend.list_flow_runs_by_state(StateType.SCHEDULED)] == [run.id]
        with backend.active_runs_snapshot():  # nested: the outer one holds
            assert [r.id for r in runs.query_flow_runs(deployment="snap")] == [run.id]
    # One read of STATE#ACTIVE, one of the earlier layout's partitions (by_state only:
    # listings by time and deployment find those runs on their own index).
    assert sorted(reads) == sorted([LATEST, EARLIER])
    runs.read_flow_runs()  # outside: read afresh
    assert reads[-1] == LATEST and len(reads) == 3
