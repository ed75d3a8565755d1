"""The on-prem poller against moto: what it does with each message (malformed, duplicate,
stale, not yet due), concurrency limits, paused queues, priorities, cancellation,
crashes, visibility extension, shutdown and worker heartbeats.

Flow run processes are faked (`FakeSpawn`) so that each test controls when a run ends;
tests/e2e/test_workers_e2e.py runs the real `strato flow-run execute` processes.
"""

from __future__ import annotations

import itertools
import json
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _deploy_fixtures import Installation, installation  # noqa: F401

from stratoflow.backends.aws import AwsClients
from stratoflow.concurrency import create_concurrency_limit
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.runs import enqueue, schedule_flow_run
from stratoflow.engine.flow_engine import request_cancellation
from stratoflow.models import FlowRun
from stratoflow.provisioning import provision_work_queue
from stratoflow.states import AwaitingRetry, Completed, Running, StateType
from stratoflow.workers.handoff import decode_handoff
from stratoflow.workers.messages import FlowRunMessage
from stratoflow.workers.poller import Poller, PollerOptions
from stratoflow.workers.processes import HANDOFF_OPTION, handoff_of
from stratoflow.workers.queues import PREFETCH_LEAD_SECONDS, REASON_ATTRIBUTE
from stratoflow.workers.registry import list_workers

PROJECT = {
    "flows.py": """
        from stratoflow import flow, task

        @task
        def double(x: int) -> int:
            return 2 * x

        @flow
        def hello(x: int = 1) -> int:
            return double(x)
    """,
    "stratoflow.yaml": """
        work_pools:
          etl:
            queues:
              - {name: high, priority: 1}
              - {name: low, priority: 2}
        deployments:
          - {name: hello, entrypoint: "flows.py:hello"}
          - {name: etl-high, entrypoint: "flows.py:hello", work_pool: etl, work_queue: high}
          - {name: etl-low, entrypoint: "flows.py:hello", work_pool: etl, work_queue: low}
          - {name: single, entrypoint: "flows.py:hello", concurrency_limit: 1}
          - name: single-cancel
            entrypoint: "flows.py:hello"
            concurrency_limit: 1
            collision_strategy: cancel-new
    """,
}


class FakeProcess:
    _pids = itertools.count(1000)

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.pid = next(self._pids)
        self.returncode: int | None = None
        self.terminated = False
        self.killed = False

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.terminated = True
        self.returncode = -signal.SIGTERM

    def kill(self) -> None:
        self.killed = True
        self.returncode = -signal.SIGKILL


@dataclass
class FakeSpawn:
    """Starts no process: by default the run goes Running then Completed at once and the
    "process" exits 0; with `hold=True` the run stays Running until `finish()`."""

    found: Installation
    hold: bool = False
    commands: list[list[str]] = field(default_factory=list)
    processes: dict[str, FakeProcess] = field(default_factory=dict)

    def __call__(self, command: list[str], env: Mapping[str, str]) -> FakeProcess:
        run_id = command[-1]
        self.commands.append(command)
        process = FakeProcess(run_id)
        self.processes[run_id] = process
        self.found.services.backend.set_flow_run_state(run_id, Running())
        if not self.hold:
            self.finish(run_id)
        return process

    def finish(self, run_id: str, code: int = 0, *, complete: bool = True) -> None:
        if complete:
            self.found.services.backend.set_flow_run_state(run_id, Completed())
        self.processes[run_id].returncode = code

    @property
    def started(self) -> list[str]:
        return [command[-1] for command in self.commands]


@dataclass
class World:
    found: Installation
    spawn: FakeSpawn

    @property
    def platform(self) -> Any:
        return self.found.platform

    @property
    def backend(self) -> Any:
        return self.found.services.backend

    def run(self, deployment: str, *, at: datetime | None = None, send: bool = True) -> FlowRun:
        platform = self.found.platform
        run, _ = schedule_flow_run(
            platform,
            platform.deployments.get(deployment),
            scheduled_time=at or self.found.clock.now(),
        )
        if send:
            enqueue(platform, run)
        return run

    def poller(self, pool: str = "default", **options: Any) -> Poller:
        values: dict[str, Any] = {
            "pool": pool,
            "name": "test-worker",
            "wait_seconds": 0,
            "background": False,
            "idle_sleep": 0.1,
            "kill_grace": 1.0,
            **options,
        }
        return Poller(self.found.platform, PollerOptions(**values), spawn=self.spawn)

    def state(self, run: FlowRun) -> Any:
        state = self.backend.read_flow_run(run.id).state
        assert state is not None
        return state

    def queue_counts(self, pool: str = "default", queue: str = "default") -> tuple[int, ...]:
        attributes = self.found.session.client("sqs").get_queue_attributes(
            QueueUrl=self.platform.queues.url(pool, queue), AttributeNames=["All"]
        )["Attributes"]
        return tuple(
            int(attributes[f"ApproximateNumberOfMessages{kind}"])
            for kind in ("", "NotVisible", "Delayed")
        )


def drain(poller: Poller, *, steps: int = 50) -> None:
    """Step until a pass receives nothing and nothing runs."""
    for _ in range(steps):
        poller.step()
        if poller.idle():
            return
    raise AssertionError("the poller did not become idle")


def write_project(root: Path) -> Path:
    for name, text in PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture
def world(installation: Installation, tmp_path: Path) -> Iterator[World]:
    clients = AwsClients(installation.session)
    prefix = installation.platform.settings.queue_prefix
    for queue in ("high", "low"):
        provision_work_queue(clients, prefix, "etl", queue)
    deploy_project(write_project(tmp_path / "project"), platform=installation.platform)
    yield World(installation, FakeSpawn(installation))


def test_a_run_is_claimed_and_started_with_the_execute_command(world: World):
    run = world.run("hello")
    poller = world.poller()
    poller.run(until=poller.idle)
    [command] = world.spawn.commands
    handoff = handoff_of(command)
    assert handoff is not None
    assert command == [
        *[sys.executable, "-m", "stratoflow.cli", "flow-run", "execute"],
        *[HANDOFF_OPTION, handoff, run.id],
    ]
    # The process is handed the run as claimed (and written) and its deployment.
    given = decode_handoff(handoff, run.id, world.backend.results)
    assert given is not None and given.deployment is not None
    assert given.deployment == world.platform.deployments.get("hello")
    claimed = [s for s in world.backend.read_flow_run(run.id).state_history if s.is_pending()]
    assert given.run.state == claimed[0]
    assert given.run.version == 2 and given.run.state_history[-1].is_scheduled()
    history = [s.name for s in world.backend.read_flow_run(run.id).state_history]
    assert history[:2] == ["Scheduled", "Pending"]
    assert world.state(run).type is StateType.COMPLETED
    assert world.queue_counts() == (0, 0, 0)


def test_a_malformed_message_is_dead_lettered_with_its_reason_and_the_worker_goes_on(
    world: World,
):
    sqs = world.found.session.client("sqs")
    sqs.send_message(QueueUrl=world.platform.queues.url("default", "default"), MessageBody="{oops")
    run = world.run("hello")
    poller = world.poller()
    poller.run(until=poller.idle)

    dead = sqs.receive_message(
        QueueUrl=world.platform.queues.dead_letter_url("default", "default"),
        MessageAttributeNames=["All"],
    )["Messages"]
    assert [m["Body"] for m in dead] == ["{oops"]
    reason = dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert "not a flow run message" in reason
    assert world.queue_counts() == (0, 0, 0)  # the original is deleted
    assert world.spawn.started == [run.id]  # and the next message was still run
    assert world.state(run).type is StateType.COMPLETED


def test_a_message_delivered_twice_runs_once(world: World):
    run = world.run("hello")
    world.platform.queues.send(
        "default", "default", FlowRunMessage(flow_run_id=run.id, deployment="hello")
    )
    poller = world.poller()
    poller.run(until=poller.idle)
    assert world.spawn.started == [run.id]
    assert poller.received == 2
    assert world.queue_counts() == (0, 0, 0)


def test_a_stale_message_of_a_completed_run_is_deleted_and_nothing_runs(world: World):
    run = world.run("hello", send=False)
    world.backend.set_flow_run_state(run.id, Completed(), force=True)
    enqueue(world.platform, world.backend.read_flow_run(run.id))
    poller = world.poller()
    poller.run(until=poller.idle)
    assert world.spawn.started == []
    assert world.queue_counts() == (0, 0, 0)


def test_a_message_of_an_unknown_run_is_deleted(world: World):
    world.platform.queues.send("default", "default", FlowRunMessage(flow_run_id="nope"))
    poller = world.poller()
    poller.run(until=poller.idle)
    assert world.spawn.started == []
    assert world.queue_counts() == (0, 0, 0)


def test_a_run_not_yet_due_is_sent_on_with_the_remaining_delay(world: World):
    clock = world.found.clock
    soon = world.run("hello", at=clock.now() + timedelta(seconds=100), send=False)
    later = world.run("hello", at=clock.now() + timedelta(minutes=40), send=False)
    for run in (soon, later):  # delivered early (e.g. a retry delay beyond 15 minutes)
        world.platform.queues.send("default", "default", FlowRunMessage(flow_run_id=run.id))
    sent_before = len(world.found.sent)
    poller = world.poller()
    poller.start()
    poller.step()
    assert world.spawn.started == []
    resent = {
        FlowRunMessage.model_validate_json(s["MessageBody"]).flow_run_id: s["DelaySeconds"]
        for s in world.found.sent[sent_before:]
    }
    # Visible PREFETCH_LEAD_SECONDS before the run is due; the poller then holds it.
    assert resent == {soon.id: 100 - int(PREFETCH_LEAD_SECONDS), later.id: 900}
    assert world.queue_counts()[:2] == (0, 0)  # the early copies are deleted
    assert world.state(soon).type is StateType.SCHEDULED


def test_deployment_concurrency_limit_enqueue_waits_for_a_slot(world: World):
    world.spawn.hold = True
    first, second = world.run("single"), world.run("single")
    poller = world.poller(defer_seconds=0)
    poller.start()
    for _ in range(3):
        poller.step()
    assert len(world.spawn.started) == 1
    running = world.spawn.started[0]
    waiting = second if running == first.id else first
    assert world.state(waiting).type is StateType.SCHEDULED  # offered again, not claimed
    world.spawn.finish(running)
    for _ in range(3):
        poller.step()
    assert world.spawn.started == [running, waiting.id]
    world.spawn.finish(waiting.id)
    drain(poller)
    assert world.state(first).type is world.state(second).type is StateType.COMPLETED
    assert world.queue_counts() == (0, 0, 0)


@pytest.mark.slow
def test_a_full_worker_receives_again_as_soon_as_a_run_ends(world: World):
    """Not after its idle sleep: the supervisor thread wakes the receive loop."""
    world.spawn.hold = True
    world.run("hello"), world.run("hello")
    options = PollerOptions(
        pool="default", wait_seconds=0, limit=1, idle_sleep=3, supervise_every=0.05
    )
    # Real sleeps (the fake clock's return at once, and would hide a wait).
    poller = Poller(world.platform, options, spawn=world.spawn, sleep=time.sleep)
    loop = threading.Thread(target=poller.run)
    loop.start()
    try:
        eventually(lambda: len(world.spawn.started) == 1)
        time.sleep(0.3)  # the loop is full: it waits
        assert len(world.spawn.started) == 1
        ended = time.monotonic()
        world.spawn.finish(world.spawn.started[0])
        eventually(lambda: len(world.spawn.started) == 2)
        assert time.monotonic() - ended < 1.5  # not after the idle sleep (3 s)
        world.spawn.finish(world.spawn.started[1])
        eventually(lambda: poller.running == 0)
    finally:
        poller.request_stop()
        loop.join(30)
    assert not loop.is_alive()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_deployment_concurrency_limit_cancel_new_cancels_the_new_run(world: World):
    world.spawn.hold = True
    first = world.run("single-cancel")
    poller = world.poller()
    poller.start()
    poller.step()
    second = world.run("single-cancel")
    poller.step()
    assert world.spawn.started == [first.id]
    state = world.state(second)
    assert state.type is StateType.CANCELLED
    assert "cancel-new" in state.message
    world.spawn.finish(first.id)
    drain(poller)
    assert world.queue_counts() == (0, 0, 0)


def test_the_work_pool_concurrency_limit_caps_runs_across_workers(world: World):
    create_concurrency_limit("work-pool:default", 1)
    world.spawn.hold = True
    runs = [world.run("hello") for _ in range(3)]
    poller = world.poller(limit=5)
    poller.start()
    for _ in range(3):
        poller.step()
    assert len(world.spawn.started) == 1
    for _ in range(len(runs)):
        world.spawn.finish(world.spawn.started[-1])
        for _ in range(3):
            poller.step()
    assert sorted(world.spawn.started) == sorted(r.id for r in runs)


def test_a_paused_queue_is_not_polled_until_resumed(world: World):
    world.platform.work_pools.set_queue_paused("etl", "high", True)
    high, low = world.run("etl-high"), world.run("etl-low")
    poller = world.poller("etl")
    poller.start()
    drain(poller)
    assert world.spawn.started == [low.id]
    assert world.queue_counts("etl", "high")[0] == 1

    world.platform.work_pools.set_queue_paused("etl", "high", False)
    world.found.clock.advance(31)  # the worker re-reads its pool every 30 s
    drain(poller)
    assert world.spawn.started == [low.id, high.id]


def test_queues_are_drained_in_priority_order(world: World):
    lows = [world.run("etl-low") for _ in range(2)]
    high = world.run("etl-high")
    poller = world.poller("etl", limit=1)
    poller.run(until=poller.idle)
    assert world.spawn.started[0] == high.id
    assert sorted(world.spawn.started[1:]) == sorted(r.id for r in lows)


def test_a_cancelling_run_has_its_process_stopped_and_ends_cancelled(world: World):
    world.spawn.hold = True
    run = world.run("hello")
    poller = world.poller()
    poller.start()
    poller.step()
    request_cancellation(run.id, world.found.services)
    world.found.clock.advance(3)
    poller.step()
    assert world.spawn.processes[run.id].terminated
    poller.step()
    assert world.state(run).type is StateType.CANCELLED
    assert world.queue_counts() == (0, 0, 0)


def test_a_process_that_dies_before_its_run_ends_crashes_the_run(world: World):
    world.spawn.hold = True
    run = world.run("hello")
    poller = world.poller()
    poller.start()
    poller.step()
    world.spawn.finish(run.id, code=-signal.SIGKILL, complete=False)
    poller.step()
    state = world.state(run)
    assert state.type is StateType.CRASHED
    assert "killed by SIGKILL" in state.message
    assert world.queue_counts() == (0, 0, 0)


def test_the_message_of_a_running_run_stays_invisible(world: World):
    world.spawn.hold = True
    run = world.run("hello")
    poller = world.poller(visibility_timeout=90, extend_every=30)
    extended: list[dict[str, Any]] = []
    poller.sqs.meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibility",
        lambda params, **_: extended.append(dict(params)),
    )
    poller.start()
    poller.step()
    world.found.clock.advance(31)
    poller.step()
    assert [e["VisibilityTimeout"] for e in extended] == [90]
    assert world.queue_counts()[:2] == (0, 1)
    world.spawn.finish(run.id)
    drain(poller)


def test_a_stop_request_releases_runs_after_the_grace_period(world: World):
    world.spawn.hold = True
    run = world.run("hello")
    poller = world.poller(shutdown_grace=5)
    poller.start()
    poller.step()
    poller.request_stop()
    poller.shutdown(5)
    process = world.spawn.processes[run.id]
    assert process.terminated
    state = world.state(run)
    assert state.type is StateType.SCHEDULED
    assert "stopped" in state.message
    assert world.queue_counts()[:2] == (1, 0)  # visible again for another worker
    assert list_workers(world.platform) == []


def test_a_run_that_ends_within_the_grace_period_is_not_handed_back(world: World):
    world.spawn.hold = True
    run = world.run("hello")
    poller = world.poller(shutdown_grace=30)
    poller.start()
    poller.step()
    poller.request_stop()

    def sleep(seconds: float) -> None:  # the run ends while the worker waits
        world.spawn.finish(run.id)
        world.found.clock.sleep(seconds)

    poller.sleep = sleep
    poller.shutdown(30)
    assert not world.spawn.processes[run.id].terminated
    assert world.state(run).type is StateType.COMPLETED
    assert world.queue_counts() == (0, 0, 0)


def test_workers_are_listed_with_their_heartbeat(world: World):
    poller = world.poller("etl", limit=2, name="edge-1")
    poller.start()
    workers = list_workers(world.platform)
    assert [(w.name, w.pool, w.queues, w.running, w.limit, w.alive) for w in workers] == [
        ("edge-1", "etl", ("high", "low"), 0, 2, True)
    ]
    assert list_workers(world.platform, "default") == []
    later = world.found.clock.now() + timedelta(seconds=61)
    assert [w.alive for w in list_workers(world.platform, now=later)] == [False]
    gone = world.found.clock.now() + timedelta(minutes=6)
    assert list_workers(world.platform, now=gone) == []
    poller.shutdown(0)
    assert list_workers(world.platform) == []


def test_claiming_a_retry_keeps_the_run_count_written_by_the_runs_process(world: World):
    """The worker that claimed attempt 1 claims attempt 2: its claim must not write back
    what it read before attempt 1 ran (run count 0)."""
    world.spawn.hold = True
    run = world.run("hello")
    poller = world.poller()
    poller.start()
    poller.step()
    child = world.found.new_platform().services.backend  # the flow run's own process
    record = child.read_flow_run(run.id)
    child.adopt_flow_run(record)
    record.run_count = 1
    child.set_flow_run_state(run.id, Running())
    child.set_flow_run_state(
        run.id, AwaitingRetry(scheduled_time=world.found.clock.now().isoformat())
    )
    world.platform.queues.send("default", "default", FlowRunMessage(flow_run_id=run.id))
    first_attempt = world.spawn.processes[run.id]
    poller.step()  # receives the retry's message while attempt 1's process still exits
    assert world.spawn.started == [run.id, run.id]
    claimed = world.backend.read_flow_run(run.id)
    assert (claimed.state.name, claimed.run_count) == ("Running", 1)

    first_attempt.returncode = 0  # exits after handing the retry off
    poller.step()
    assert world.state(run).name == "Running"  # attempt 2 is not taken for a crash
    assert poller.running == 1
    world.spawn.finish(run.id)
    drain(poller)
    assert world.state(run).type is StateType.COMPLETED
    assert world.queue_counts() == (0, 0, 0)


# The CLI


def strato(*args: str) -> Any:
    from typer.testing import CliRunner

    from stratoflow.cli.app import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_worker_start_once_runs_what_is_queued_and_exits(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("stratoflow.workers.poller.spawner_for", lambda _: world.spawn)
    run = world.run("etl-low")
    result = strato("worker", "start", "--pool", "etl", "--queue", "low", "--once")
    assert result.exit_code == 0, result.output
    assert world.spawn.started == [run.id]
    assert world.state(run).type is StateType.COMPLETED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pool", "nope"), "No work pool named 'nope'"),
        (("--pool", "etl", "--queue", "medium"), "has no queue 'medium'"),
    ],
)
def test_worker_start_with_an_unknown_pool_or_queue_is_one_line(
    world: World, args: tuple[str, ...], message: str
):
    result = strato("worker", "start", *args, "--once")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_worker_ls_lists_live_workers(world: World):
    poller = world.poller("etl", name="edge-7")
    poller.start()
    result = strato("worker", "ls")
    assert result.exit_code == 0, result.output
    assert "edge-7" in result.output
    assert "high, low" in result.output
    listed = strato("worker", "ls", "--json", "--pool", "etl")
    assert [w["name"] for w in json.loads(listed.output)] == ["edge-7"]
    assert strato("worker", "ls", "--pool", "nope").exit_code == 2
