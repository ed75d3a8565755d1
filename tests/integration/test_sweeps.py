"""Crash and zombie detection on the scheduler tick: dead runs are found, healthy ones
are left alone."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from _deploy_fixtures import EXAMPLES, Installation, installation, make_deployment  # noqa: F401

from stratoflow.deployments.runs import schedule_flow_run
from stratoflow.models import FlowRun
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.states import Running, StateType
from stratoflow.sweeps import sweep

# TTLs, schedules or time windows: also run with the clock moved (tests/timeshift.py).
pytestmark = pytest.mark.date_sensitive


def claimed_run(found: Installation, *, retries: int = 0) -> FlowRun:
    deployment = make_deployment("sweepable")
    found.platform.deployments.put(deployment)
    run, _ = schedule_flow_run(found.platform, deployment, scheduled_time=found.clock.now())
    claimed = claim_flow_run(found.services.backend, run.id, now=found.clock.now())
    assert claimed is not None
    return claimed


def start(found: Installation, run: FlowRun, *, retries: int = 0) -> FlowRun:
    backend = found.services.backend
    run.retries = retries
    run.run_count = 1
    backend.adopt_flow_run(run)
    # One clock, as in a deployment: the state's time is the run's first proof of life.
    backend.set_flow_run_state(run.id, dataclasses.replace(Running(), timestamp=found.clock.now()))
    started = backend.read_flow_run(run.id)
    backend.record_flow_run_heartbeat(started, found.clock.now())
    return started


def test_a_running_run_without_heartbeat_is_crashed(installation: Installation):
    run = start(installation, claimed_run(installation))
    installation.clock.advance(60)
    assert sweep(installation.platform, installation.clock.now()).crashed == 0
    installation.clock.advance(60)  # 120 s since the last heartbeat > 90 s
    report = sweep(installation.platform, installation.clock.now())
    assert (report.crashed, report.retried) == (1, 0)
    stored = installation.services.backend.read_flow_run(run.id)
    assert stored.state is not None
    assert stored.state.type is StateType.CRASHED
    assert "No heartbeat for more than 90 s" in (stored.state.message or "")


def test_a_crashed_run_with_retries_left_is_retried(installation: Installation):
    run = start(installation, claimed_run(installation), retries=2)
    sent_before = len(installation.sent)
    installation.clock.advance(200)
    report = sweep(installation.platform, installation.clock.now())
    assert (report.crashed, report.retried) == (1, 1)
    stored = installation.services.backend.read_flow_run(run.id)
    assert stored.state is not None
    assert stored.state.name == "AwaitingRetry"
    assert [s.name for s in stored.state_history][-2:] == ["Running", "Crashed"]
    assert len(installation.sent) == sent_before + 1  # back on its work queue
    assert claim_flow_run(installation.services.backend, run.id) is not None


def test_a_claimed_run_never_started_is_rescheduled(installation: Installation):
    run = claimed_run(installation)
    installation.clock.advance(301)
    report = sweep(installation.platform, installation.clock.now())
    assert report.rescheduled == 1
    stored = installation.services.backend.read_flow_run(run.id)
    assert stored.state is not None
    assert (stored.state.type, stored.state.name) == (StateType.SCHEDULED, "Rescheduled")
    assert installation.services.backend.read_flow_run(run.id).enqueued_at is not None


def test_a_run_stuck_in_cancelling_becomes_cancelled(installation: Installation):
    run = start(installation, claimed_run(installation))
    from stratoflow import runs

    runs.cancel_flow_run(run.id)
    installation.clock.advance(30)
    assert sweep(installation.platform, installation.clock.now()).cancelled == 0
    installation.clock.advance(31)
    assert sweep(installation.platform, installation.clock.now()).cancelled == 1
    stored = installation.services.backend.read_flow_run(run.id)
    assert stored.state is not None
    assert stored.state.type is StateType.CANCELLED


def test_runs_outside_deployments_are_left_alone(installation: Installation):
    from stratoflow import flow

    @flow
    def local() -> int:
        return 1

    local()
    installation.clock.advance(10_000)
    report = sweep(installation.platform, installation.clock.now())
    assert (report.crashed, report.rescheduled, report.cancelled) == (0, 0, 0)


def test_a_heartbeat_item_keeps_a_long_running_run_alive(installation: Installation):
    # The run entered Running long ago; its heartbeat item (not its item) says it is alive.
    run = start(installation, claimed_run(installation))
    backend = installation.services.backend
    installation.clock.advance(600)
    backend.record_flow_run_heartbeat(run, installation.clock.now())
    installation.clock.advance(60)
    assert sweep(installation.platform, installation.clock.now()).crashed == 0
    installation.clock.advance(60)  # 120 s since the last beat > 90 s
    assert sweep(installation.platform, installation.clock.now()).crashed == 1


def test_a_garbled_heartbeat_item_is_no_sign_of_life_and_stops_no_sweep(
    installation: Installation,
):
    # Heartbeat items are written by workers: one that does not hold an aware time counts
    # as no beat, and the other runs are still swept.
    from stratoflow import resources
    from stratoflow.backends.aws.items import to_item

    backend = installation.services.backend
    garbled = start(installation, claimed_run(installation))
    other = start(installation, claimed_run(installation))
    for run, beat in ((garbled, "not a time"), (other, "2020-01-01T00:00:00")):
        backend.dynamodb.put_item(
            TableName=backend.table,
            Item=to_item({**resources.flow_run_heartbeat_key(run.id), "heartbeat": beat}),
        )
    installation.clock.advance(120)
    assert backend.flow_run_heartbeats([garbled.id, other.id]) == {}
    assert sweep(installation.platform, installation.clock.now()).crashed == 2


def test_a_run_that_moved_meanwhile_is_not_touched(installation: Installation):
    run = start(installation, claimed_run(installation))
    installation.clock.advance(200)
    stale = installation.services.backend.read_flow_run(run.id)
    installation.services.backend.record_flow_run_heartbeat(stale, installation.clock.now())
    installation.services.backend.set_flow_run_state(run.id, Running(name="Running"))
    # The sweep read `stale` before the run moved: its conditional write loses.
    from stratoflow import sweeps

    sweeps._crash(installation.platform, stale, installation.clock.now(), sweeps.SweepReport())
    stored = installation.services.backend.read_flow_run(run.id)
    assert stored.state is not None
    assert stored.state.type is StateType.RUNNING


@pytest.mark.usefixtures("installation")
def test_a_long_task_that_keeps_heartbeating_stays_running(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A real deployed run executing for ~3 s with a 0.2 s heartbeat, swept every 0.2 s
    with a 1 s zombie limit (real time): it is never marked Crashed."""
    from stratoflow.clock import SystemClock
    from stratoflow.deployments.deploy import deploy_project
    from stratoflow.deployments.runs import run_deployment
    from stratoflow.settings import get_settings
    from stratoflow.workers.execute import execute_flow_run

    monkeypatch.setenv("STRATOFLOW_HEARTBEAT_SECONDS", "0.2")
    monkeypatch.setenv("STRATOFLOW_ZOMBIE_AFTER_SECONDS", "1")
    get_settings.cache_clear()
    installation.services.clock = SystemClock()
    installation.platform.settings = get_settings()
    project = tmp_path / "project"
    project.mkdir()
    (project / "slow.py").write_text(
        "import time\nfrom stratoflow import flow, task\n\n"
        "@task\ndef step() -> None:\n    time.sleep(0.5)\n\n"
        "@flow\ndef slow() -> str:\n    for _ in range(6):\n        step()\n    return 'done'\n"
    )
    (project / "stratoflow.yaml").write_text(
        "deployments:\n  - name: slow\n    entrypoint: slow.py:slow\n"
    )
    deploy_project(project, platform=installation.platform)
    run = run_deployment("slow", timeout=0)
    outcome: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: outcome.setdefault("state", execute_flow_run(run.id)), daemon=True
    )
    worker.start()
    crashed = 0
    deadline = time.monotonic() + 30
    while worker.is_alive() and time.monotonic() < deadline:
        crashed += sweep(installation.platform, SystemClock().now()).crashed
        time.sleep(0.2)
    worker.join(timeout=5)
    assert crashed == 0
    final = installation.services.backend.read_flow_run(run.id)
    assert final.state is not None
    assert final.state.name == "Completed", final.state
    beat = installation.services.backend.flow_run_heartbeats([run.id]).get(run.id)
    assert beat is not None  # an item of its own (backends/aws/heartbeats.py)
    assert timedelta(0) <= SystemClock().now() - beat < timedelta(seconds=30)
    assert final.heartbeat is None  # the run's item is not rewritten by beats


def test_a_run_whose_message_expired_unreceived_is_sent_again(installation: Installation):
    """SQS deletes a message after the queue's retention (14 days): a Scheduled or Late
    run whose message nobody received that long would wait forever without the sweep."""
    from stratoflow import resources
    from stratoflow.scheduler import Scheduler
    from stratoflow.sweeps import MESSAGE_EXPIRED_AFTER

    deployment = make_deployment("unpolled", schedules=[])
    installation.platform.deployments.put(deployment)
    now = installation.clock.now
    run, _ = schedule_flow_run(installation.platform, deployment, scheduled_time=now())
    from stratoflow.deployments.runs import enqueue

    enqueue(installation.platform, run)
    sent_at = now()
    installation.clock.advance(60)
    assert Scheduler(installation.platform).tick(now()).late == 1  # no worker polls it
    backend = installation.services.backend
    retention = timedelta(seconds=resources.QUEUE_RETENTION_SECONDS)
    assert retention < MESSAGE_EXPIRED_AFTER

    def sends() -> int:
        return sum(1 for m in installation.sent if run.id in m["MessageBody"])

    assert sends() == 1
    # Still within the retention (and its margin): the message may be there; no resend.
    installation.clock.advance((MESSAGE_EXPIRED_AFTER - (now() - sent_at)).total_seconds() - 1)
    assert sweep(installation.platform, now()).resent == 0
    installation.clock.advance(2)
    report = sweep(installation.platform, now())
    assert report.resent == 1 and sends() == 2
    stored = backend.read_flow_run(run.id)
    assert stored.state is not None and stored.state.name == "Late"  # unchanged
    assert stored.enqueued_at == now()
    # Sent once per retention, not on every tick.
    installation.clock.advance(3600)
    assert sweep(installation.platform, now()).resent == 0 and sends() == 2
    # The new message is claimable: the claim is conditional, so a duplicate is harmless.
    assert claim_flow_run(backend, run.id, now=now()) is not None
    assert claim_flow_run(backend, run.id, now=now()) is None
    installation.clock.advance(MESSAGE_EXPIRED_AFTER.total_seconds())
    assert sweep(installation.platform, now()).resent == 0  # claimed runs are not resent


def test_a_run_never_sent_is_left_to_the_scheduler_tick(installation: Installation):
    from stratoflow.sweeps import MESSAGE_EXPIRED_AFTER

    deployment = make_deployment("unsent")
    installation.platform.deployments.put(deployment)
    schedule_flow_run(installation.platform, deployment, scheduled_time=installation.clock.now())
    installation.clock.advance(MESSAGE_EXPIRED_AFTER.total_seconds() * 2)
    assert sweep(installation.platform, installation.clock.now()).resent == 0
