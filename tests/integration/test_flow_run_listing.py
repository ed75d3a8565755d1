"""Where a flow run is listed (backends/aws/flow_run_lists.py): on `by_state` while it is
not final, on `by_time` and `by_deployment` too from its first final state on; every
listing by time or by deployment still shows every run once, newest first."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from _deploy_fixtures import Installation, installation, make_deployment  # noqa: F401

from stratoflow import runs
from stratoflow.backends.aws.items import from_item
from stratoflow.deployments.runs import schedule_flow_run
from stratoflow.models import FlowRun
from stratoflow.states import Completed, Pending, Running, Scheduled, State

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
    assert not LISTING_KEYS & set(_item(installation, run.id))
    assert _item(installation, run.id)["gsi2pk"] == "STATE#SCHEDULED"

    _move(installation, run, Pending(), Running())
    item = _item(installation, run.id)
    assert not LISTING_KEYS & set(item)
    assert item["gsi2pk"] == "STATE#RUNNING"
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
    assert set(item) >= LISTING_KEYS and item["gsi2pk"] == "STATE#SCHEDULED"
    listed = runs.read_flow_runs()
    assert [r.id for r in listed] == [run.id]
    assert listed[0].state is not None and listed[0].state.name == "Scheduled"
    assert [r.id for r in runs.query_flow_runs(deployment="again")] == [run.id]
