"""Durable runs end to end on the emulator (moto's server in its own process), through
each worker kind: the on-prem poller (a real `strato worker start` process), the Lambda
worker handler fed real SQS records, and the ECS path (dispatcher + the container's
command run by hand). docs/durability.md.

Each task appends its name to a file: it says which task functions really ran."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from test_workers_e2e import (  # the same emulated stack and helpers
    FakeLambdaContext,
    Stack,
    deployed_stack,
    ecs,  # noqa: F401 - fixture
    eventually,
    load_handler,
    run_in,
    sqs_event,
)

from stratoflow import runs
from stratoflow.deployments.runs import run_deployment
from stratoflow.flow_runs import resume_flow_run
from stratoflow.platform import get_platform
from stratoflow.states import StateType

pytestmark = pytest.mark.slow

FLOWS = """
import time

import stratoflow
from stratoflow import flow, task
from stratoflow.flow_runs import suspend_flow_run
from stratoflow.input import RunInput
from stratoflow.runtime import flow_run


def note(log, what):
    with open(log, "a") as f:
        f.write(what + "\\n")


@task
def step(log: str, name: str) -> str:
    note(log, name)
    return name


@task
def slow_step(log: str, name: str) -> str:
    note(log, name)
    time.sleep(1.0)
    return name


@task
def flaky(log: str) -> str:
    note(log, "flaky")
    if flow_run.run_count < 2:
        raise RuntimeError("the second task fails in the first attempt")
    return "flaky"


@flow(retries=1, retry_delay_seconds=0)
def three(log: str) -> list:
    return [step(log, "a"), flaky(log), step(log, "c")]


class Approval(RunInput):
    approved: bool


@flow
def approve(log: str) -> str:
    step(log, "before")
    answer = suspend_flow_run(wait_for_input=Approval, timeout=600)
    return step(log, f"after-{answer.approved}")


@flow
def nap(log: str, seconds: float = 4) -> str:
    step(log, "before")
    stratoflow.sleep(seconds)
    return step(log, "after")


@flow
def marathon(log: str) -> list:
    return [slow_step(log, f"s{i}") for i in range(5)]
"""

CONFIG = """
deployments:
  - {name: three, entrypoint: "flows.py:three"}
  - {name: approve, entrypoint: "flows.py:approve"}
  - {name: nap, entrypoint: "flows.py:nap"}
  - {name: marathon, entrypoint: "flows.py:marathon"}
  - {name: approve-ecs, entrypoint: "flows.py:approve", job_variables: {cpu: 256, memory: 512}}
  - {name: three-ecs, entrypoint: "flows.py:three", job_variables: {cpu: 256, memory: 512}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from deployed_stack(tmp_path_factory, FLOWS, CONFIG)


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def ended(run_id: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    return eventually(
        run_in(StateType.COMPLETED, StateType.FAILED, StateType.CRASHED)(run_id),
        timeout=timeout,
        what=f"flow run {run_id} to end",
    )


def test_the_poller_replays_suspends_resumes_and_sleeps(stack: Stack, tmp_path: Path):
    output = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "stratoflow.cli", "worker", "start"),
            *("--pool", "default", "--name", "durable-worker", "--wait-seconds", "1"),
        ],
        env=stack.env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        # A retry after a failed task replays the task the first attempt completed.
        log = tmp_path / "three.log"
        run = run_deployment("three", parameters={"log": str(log)}, timeout=0)
        done = ended(run.id)
        assert done.state.type is StateType.COMPLETED, done.state
        assert calls(log) == ["a", "flaky", "flaky", "c"]

        # Suspended for input: the worker holds nothing; `strato flow-run resume` sends
        # it back to the queue, and it finishes with the input.
        log = tmp_path / "approve.log"
        run = run_deployment("approve", parameters={"log": str(log)}, timeout=0)
        eventually(run_in(StateType.PAUSED)(run.id), timeout=45, what="the run to suspend")

        def idle() -> bool:
            listed = json.loads(stack.strato("worker", "ls", "--json").stdout)
            return bool(listed) and listed[0]["running"] == 0

        eventually(idle, timeout=30, what="the worker to hold no run")
        bad = stack.strato("flow-run", "resume", run.id, "--input", "approved=perhaps")
        assert bad.returncode != 0 and "stays paused" in bad.stderr + bad.stdout
        good = stack.strato("flow-run", "resume", run.id, "--input", "approved=true")
        assert good.returncode == 0, good.stderr
        done = ended(run.id)
        assert runs.read_result(done) == "after-True"
        assert calls(log) == ["before", "after-True"]

        # A durable sleep: the run waits without a process, wakes once, close to on time.
        log = tmp_path / "nap.log"
        run = run_deployment("nap", parameters={"log": str(log), "seconds": 4}, timeout=0)
        done = ended(run.id)
        assert calls(log) == ["before", "after"]
        history = [*done.state_history, done.state]
        sleeping = [s for s in history if s.name == "Sleeping"]
        assert len(sleeping) == 1  # woke once
        wake = datetime.fromisoformat(sleeping[0].details["scheduled_time"])
        resumed = next(s for s in history if s.timestamp > wake and s.type is StateType.RUNNING)
        lateness = (resumed.timestamp - wake).total_seconds()
        print(f"durable sleep wake-up lateness: {lateness:.2f} s")
        assert -2.0 <= lateness < 15.0
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        output.close()
        print((tmp_path / "worker.log").read_text())


def test_the_lambda_worker_suspends_resumes_and_hands_long_flows_back(stack: Stack, tmp_path: Path):
    handler = load_handler("lambda_worker")
    ok = {"batchItemFailures": []}

    # A retry replays the task the failed attempt completed.
    log = tmp_path / "three.log"
    run = run_deployment("three", parameters={"log": str(log)}, timeout=0)
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == ok
    assert runs.read_flow_run(run.id).state_name == "AwaitingRetry"
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == ok
    assert runs.read_flow_run(run.id).state_name == "Completed"
    assert calls(log) == ["a", "flaky", "flaky", "c"]

    # A durable sleep: the invocation returns; the delayed message wakes the run once.
    log = tmp_path / "nap.log"
    run = run_deployment("nap", parameters={"log": str(log), "seconds": 2}, timeout=0)
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == ok
    assert runs.read_flow_run(run.id).state_name == "Sleeping"
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == ok
    assert runs.read_result(runs.read_flow_run(run.id)) == "after"
    assert calls(log) == ["before", "after"]

    log = tmp_path / "approve.log"
    run = run_deployment("approve", parameters={"log": str(log)}, timeout=0)
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == ok
    assert runs.read_flow_run(run.id).state_name == "Suspended"  # the invocation returned
    resume_flow_run(run.id, run_input={"approved": False})
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == ok
    assert runs.read_result(runs.read_flow_run(run.id)) == "after-False"
    assert calls(log) == ["before", "after-False"]

    # Five 1-second tasks in invocations that have ~62 s left and hand back under 60 s:
    # each invocation runs a task or two, then hands the run back; the next continues.
    log = tmp_path / "marathon.log"
    run = run_deployment("marathon", parameters={"log": str(log)}, timeout=0)
    invocations = 0
    while runs.read_flow_run(run.id).state.type is not StateType.COMPLETED:  # type: ignore[union-attr]
        assert invocations < 10, runs.read_flow_run(run.id).state
        assert handler.handler(sqs_event(stack), FakeLambdaContext(remaining_ms=62_000)) == ok
        invocations += 1
    done = runs.read_flow_run(run.id)
    assert runs.read_result(done) == ["s0", "s1", "s2", "s3", "s4"]
    assert calls(log) == ["s0", "s1", "s2", "s3", "s4"]  # each task once
    assert invocations >= 2
    assert "HandedBack" in [s.name for s in done.state_history]


def test_the_ecs_path_replays_suspends_and_resumes(
    stack: Stack, ecs: dict[str, str], tmp_path: Path
):
    handler = load_handler("ecs_dispatcher")
    queue = get_platform().queues.name("default", "default")
    ok = {"batchItemFailures": []}

    # A retry in a new ECS task replays the task the failed attempt completed.
    log = tmp_path / "three-ecs.log"
    run = run_deployment("three-ecs", parameters={"log": str(log)}, timeout=0)
    for _ in range(2):
        assert handler.handler(sqs_event(stack), FakeLambdaContext()) == ok
        done = stack.strato("flow-run", "execute", run.id, "--from-queue", queue)
        assert done.returncode == 0, done.stderr
    assert runs.read_flow_run(run.id).state_name == "Completed"
    assert calls(log) == ["a", "flaky", "flaky", "c"]

    log = tmp_path / "approve-ecs.log"
    run = run_deployment("approve-ecs", parameters={"log": str(log)}, timeout=0)
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == {"batchItemFailures": []}
    command = ("flow-run", "execute", run.id, "--from-queue", queue)
    first = stack.strato(*command)
    assert first.returncode == 0, first.stderr  # the task ends: it holds nothing
    assert runs.read_flow_run(run.id).state_name == "Suspended"
    resume_flow_run(run.id, run_input={"approved": True})
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == {"batchItemFailures": []}
    assert stack.strato(*command).returncode == 0
    assert runs.read_result(runs.read_flow_run(run.id)) == "after-True"
    assert calls(log) == ["before", "after-True"]
