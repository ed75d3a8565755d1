"""Finding 3, run items (docs/security.md "A worker runs only its own pool's runs"): run
ids carry their pool's tag, each on-prem pool may write only its own (judged on the
template in test_on_prem_pool_queues.py). What is left to a worker of pool A is writing
an item in its own namespace that *claims* pool B and waiting for the control plane to
send it to B's queue. On moto: the scheduler's tick and the sweeps do not; genuine runs
still go; and upgrading from ids without tags never runs a slot twice.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stratoflow.deployments.runs import _key_seed, enqueue, schedule_flow_run
from stratoflow.models import FlowRun
from stratoflow.run_ids import carries_pool, new_flow_run_id
from stratoflow.scheduler import Scheduler
from stratoflow.states import Pending, Scheduled
from stratoflow.sweeps import MESSAGE_EXPIRED_AFTER, resend_expired
from stratoflow.workers.ownership import NotInPoolNamespace
from tests.integration._deploy_fixtures import Installation, deploy_files, installation

__all__ = ["installation"]  # the fixture, reused

pytestmark = pytest.mark.date_sensitive

PROJECT = {
    "flows.py": """
        from stratoflow import flow

        @flow
        def hello(x: int = 1) -> int:
            return 2 * x
    """,
    "stratoflow.yaml": """
        work_pools:
          onprem: {}
          other: {}
        deployments:
          - {name: onprem-hello, entrypoint: "flows.py:hello", work_pool: onprem}
          - {name: other-hello, entrypoint: "flows.py:hello", work_pool: other}
          - name: every-minute
            entrypoint: "flows.py:hello"
            work_pool: other
            schedules: [{cron: "* * * * *"}]
    """,
}


@pytest.fixture
def world(installation: Installation, tmp_path: Path) -> Installation:
    deploy_files(installation, tmp_path / "project", PROJECT, pools=("onprem", "other"))
    return installation


def _plant(world: Installation, run_id: str, at: datetime | None = None, **fields: Any) -> FlowRun:
    """What a worker of pool onprem may write: an item in its own namespace, claiming
    pool `other` (an unsent Scheduled run of other's deployment, attacker parameters)."""
    now = at or world.clock.now()
    run = FlowRun(
        id=run_id,
        name="planted",
        flow_name="hello",
        parameters={"x": 666},
        deployment_name="other-hello",
        work_pool_name="other",
        work_queue_name="default",
        expected_start_time=now,
        created=now,
        state=Scheduled(scheduled_time=now.isoformat(), timestamp=now),
        version=1,
        **fields,
    )
    world.services.backend.create_flow_run(run)
    return run


def _sent_ids(world: Installation) -> set[str]:
    return {message.flow_run_id for message, _ in world.sent_messages()}


def test_the_tick_does_not_send_a_run_planted_by_another_pool(world: Installation) -> None:
    planted = _plant(world, new_flow_run_id("onprem"))
    genuine, _ = schedule_flow_run(
        world.platform,
        world.platform.deployments.get("other-hello"),
        scheduled_time=world.clock.now(),
    )  # created but never sent: the tick sends it
    assert carries_pool(genuine.id, "other")

    report = Scheduler(world.platform).tick(world.clock.now())

    sent = _sent_ids(world)
    assert genuine.id in sent and planted.id not in sent
    (error,) = [e for e in report.errors if planted.id in e]
    assert "not in that pool's namespace" in error and "Run the deployment again" in error
    assert world.services.backend.read_flow_run(planted.id).state_name == "Scheduled"  # kept
    with pytest.raises(NotInPoolNamespace):
        enqueue(world.platform, world.services.backend.read_flow_run(planted.id))


def test_the_sweep_does_not_send_a_planted_run_again(
    world: Installation, caplog: pytest.LogCaptureFixture
) -> None:
    long_ago = world.clock.now() - MESSAGE_EXPIRED_AFTER - timedelta(minutes=5)
    planted = _plant(world, new_flow_run_id("onprem"), at=long_ago, enqueued_at=long_ago)
    with caplog.at_level(logging.WARNING):
        resend_expired(world.platform, world.clock.now())
    assert planted.id not in _sent_ids(world)
    assert any(planted.id in r.getMessage() for r in caplog.records)


def test_upgrading_from_untagged_ids_never_runs_a_slot_twice(world: Installation) -> None:
    """A slot's run made by an earlier version has the plain uuid5 id: the tick finds it
    and makes no second run of that slot."""
    scheduler = Scheduler(world.platform)
    scheduler.tick(world.clock.now())
    runs = world.services.backend.list_flow_runs_of_deployment("every-minute")
    assert runs and all(carries_pool(r.id, "other") for r in runs)
    # Make the first slot's run look like an earlier version's: the plain uuid5 id.
    first = min(runs, key=lambda r: r.expected_start_time)  # type: ignore[arg-type, return-value]
    legacy_id = first.id.replace(first.id[:8], _plain_prefix(first), 1)
    world.services.backend.delete_flow_run(first.id)
    world.services.backend.create_flow_run(dataclasses.replace(first, id=legacy_id))

    report = scheduler.tick(world.clock.now())

    after = world.services.backend.list_flow_runs_of_deployment("every-minute")
    assert len(after) == len(runs)  # no duplicate of the slot
    assert legacy_id in {r.id for r in after}
    assert report.created == 0


def _plain_prefix(run: FlowRun) -> str:
    """The first 8 hex digits of the slot's plain uuid5 (what an earlier version used)."""
    assert run.idempotency_key is not None
    return str(_key_seed("every-minute", run.idempotency_key))[:8]


def test_the_sweeps_leave_a_planted_pending_run_alone_and_the_tick_goes_on(
    world: Installation,
) -> None:
    """A planted run that looks stuck in Pending is not rescheduled into pool B's queue;
    the tick reports no error for it and finishes."""
    long_ago = world.clock.now() - timedelta(hours=1)
    planted = _plant(world, new_flow_run_id("onprem"), at=long_ago)
    world.services.backend.set_flow_run_state(planted.id, Pending(), force=True)

    report = Scheduler(world.platform).tick(world.clock.now())

    assert report.complete and report.swept.rescheduled == 0
    assert planted.id not in _sent_ids(world)
    assert world.services.backend.read_flow_run(planted.id).state_name == "Pending"
