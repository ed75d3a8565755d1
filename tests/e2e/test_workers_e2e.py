"""The three workers end to end against the emulator (moto's server in its own process):

- the on-prem poller as a real `strato worker start` process, running each flow run in
  a real `strato flow-run execute` process: a run completes (after a flow retry handed
  back through the queue) with its result and logs where they belong; a long run is
  cancelled by killing its process; SIGTERM stops the worker cleanly;
- the Lambda worker handler fed real SQS records;
- the ECS dispatcher: run_task with the container command, then the container's command
  run by hand; a task that stopped before its run ended crashes the run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import boto3
import pytest
from _stack import emulated_installation

import stratoflow
from stratoflow import runs
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.runs import run_deployment
from stratoflow.dev.event_sources import sqs_event as lambda_sqs_event
from stratoflow.models import FlowRun
from stratoflow.platform import get_platform
from stratoflow.states import StateType
from stratoflow.workers.queues import REASON_ATTRIBUTE

pytestmark = pytest.mark.slow

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
T = TypeVar("T")

FLOWS = """
import time

from stratoflow import flow, get_run_logger, task
from stratoflow.runtime import flow_run, task_run


@task(retries=2, retry_delay_seconds=0)
def flaky(x: int) -> int:
    if task_run.run_count < 2:
        raise RuntimeError("the first attempt of the task fails")
    return x * 10


@flow(retries=1, retry_delay_seconds=0)
def hello(x: int = 4) -> int:
    value = flaky(x)
    if flow_run.run_count < 2:
        raise RuntimeError("the first attempt of the flow fails")
    get_run_logger().info("hello computed %s", value)
    return value


@flow
def sleepy(seconds: float = 120) -> str:
    get_run_logger().info("going to sleep")
    time.sleep(seconds)
    return "woke up"
"""

CONFIG = """
deployments:
  - {name: hello, entrypoint: "flows.py:hello"}
  - {name: sleepy, entrypoint: "flows.py:sleepy"}
  - name: hello-ecs
    entrypoint: "flows.py:hello"
    job_variables:
      env: {GREETING: hi}
      cpu: 512
      memory: 1024
"""


@dataclass
class Stack:
    endpoint: str
    env: dict[str, str]
    home: Path

    def client(self, service: str) -> Any:
        return boto3.Session(region_name="us-east-1").client(service, endpoint_url=self.endpoint)

    def strato(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stratoflow.cli", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )


def eventually(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def run_in(*types: StateType) -> Callable[[str], Callable[[], FlowRun | None]]:
    def checker(run_id: str) -> Callable[[], FlowRun | None]:
        def check() -> FlowRun | None:
            run = runs.read_flow_run(run_id)
            return run if run.state is not None and run.state.type in types else None

        return check

    return checker


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from deployed_stack(tmp_path_factory, FLOWS, CONFIG)


def deployed_stack(
    tmp_path_factory: pytest.TempPathFactory, flows: str, config: str
) -> Iterator[Stack]:
    """An emulated installation with a project of `flows` (flows.py) and `config`
    (stratoflow.yaml) deployed."""
    home = tmp_path_factory.mktemp("home")
    project = tmp_path_factory.mktemp("project")
    (project / "flows.py").write_text(flows.lstrip())
    (project / "stratoflow.yaml").write_text(textwrap.dedent(config).lstrip())
    with emulated_installation(home) as url:
        deploy_project(project)
        yield Stack(url, dict(os.environ), home)


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_the_poller_runs_cancels_and_stops(stack: Stack, tmp_path: Path, start_method: str):
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "stratoflow.cli", "worker", "start"),
            *("--pool", "default", "--name", "e2e-worker", "--wait-seconds", "1"),
        ],
        env={**stack.env, "STRATOFLOW_WORKER_START_METHOD": start_method},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # A run that fails once, is handed back to its queue for its retry, then completes.
        run = run_deployment("hello", timeout=0)
        done = eventually(
            run_in(StateType.COMPLETED, StateType.FAILED, StateType.CRASHED)(run.id),
            timeout=45,
            what="the hello run to end",
        )
        assert done.state is not None
        assert done.state.type is StateType.COMPLETED, done.state
        assert runs.read_result(done) == 40
        assert done.run_count == 2
        assert "AwaitingRetry" in [s.name for s in done.state_history]
        lines = eventually(
            lambda: [e.message for e in runs.read_logs(run.id) if "hello computed" in e.message],
            timeout=15,
            what="the run's log line in CloudWatch",
        )
        assert lines == ["hello computed 40"]

        listed = stack.strato("worker", "ls", "--json")
        assert listed.returncode == 0, listed.stderr
        workers = json.loads(listed.stdout)
        assert [(w["name"], w["pool"], w["alive"]) for w in workers] == [
            ("e2e-worker", "default", True)
        ]

        # A long run, cancelled: the worker kills its process.
        long = run_deployment("sleepy", timeout=0)
        eventually(run_in(StateType.RUNNING)(long.id), timeout=30, what="the sleepy run to run")
        assert stratoflow.cancel_flow_run(long.id).type is StateType.CANCELLING
        cancelled = eventually(
            run_in(StateType.CANCELLED, StateType.CRASHED, StateType.COMPLETED)(long.id),
            timeout=20,
            what="the sleepy run to end",
        )
        assert cancelled.state is not None
        assert cancelled.state.type is StateType.CANCELLED, cancelled.state

        # SIGTERM: the worker stops receiving and exits cleanly.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert json.loads(stack.strato("worker", "ls", "--json").stdout) == []
        # Every run's process came the chosen way (no fresh process instead of a fork).
        assert "fresh process" not in (tmp_path / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()
        print((tmp_path / "worker.log").read_text())


@dataclass
class FakeLambdaContext:
    remaining_ms: int = 600_000
    function_name: str = "stratoflow-worker"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:stratoflow-worker"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_handler(name: str) -> ModuleType:
    path = FUNCTIONS / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"{name}_handler", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqs_event(stack: Stack, *, body: str | None = None) -> dict[str, Any]:
    """The next message of the default work queue as a Lambda SQS event (or a record
    with `body` that was never sent, for malformed input)."""
    sqs = stack.client("sqs")
    url = get_platform().queues.url("default", "default")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    if body is None:
        message = eventually(
            lambda: sqs.receive_message(
                QueueUrl=url,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=60,
            ).get("Messages"),
            timeout=10,
            what="a message in the work queue",
        )[0]
    else:
        message = {
            "MessageId": "malformed-1",
            "ReceiptHandle": "handle",
            "Body": body,
            "Attributes": {},
            "MD5OfBody": "0" * 32,
        }
    return lambda_sqs_event([message], arn)


def test_the_lambda_worker_runs_hands_back_and_dead_letters(stack: Stack):
    handler = load_handler("lambda_worker")

    run = run_deployment("hello", timeout=0)
    event = sqs_event(stack)
    # Too little time left: handed back, not started.
    assert handler.handler(event, FakeLambdaContext(remaining_ms=10_000)) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }
    assert runs.read_flow_run(run.id).state.type is StateType.SCHEDULED  # type: ignore[union-attr]

    # Enough time: the run is executed in the invocation (its flow retry goes back to
    # the queue as a new message, which the next invocation picks up).
    assert handler.handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert runs.read_flow_run(run.id).state_name == "AwaitingRetry"
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == {"batchItemFailures": []}
    done = runs.read_flow_run(run.id)
    assert done.state is not None
    assert done.state.type is StateType.COMPLETED
    assert runs.read_result(done) == 40

    # A malformed record is dead-lettered with its reason and counts as processed.
    malformed = sqs_event(stack, body="definitely not json")
    assert handler.handler(malformed, FakeLambdaContext()) == {"batchItemFailures": []}
    sqs = stack.client("sqs")
    dead = eventually(
        lambda: sqs.receive_message(
            QueueUrl=get_platform().queues.dead_letter_url("default", "default"),
            MessageAttributeNames=["All"],
            MaxNumberOfMessages=10,
        ).get("Messages"),
        timeout=10,
        what="the dead-lettered record",
    )
    bodies = {m["Body"]: m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in dead}
    assert "not a flow run message" in bodies["definitely not json"]


@pytest.fixture(scope="module")
def ecs(stack: Stack) -> Iterator[dict[str, str]]:
    ec2 = stack.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="flow-runs", Description="runs", VpcId=vpc)
    client = stack.client("ecs")
    client.create_cluster(clusterName="stratoflow")
    client.register_task_definition(
        family="stratoflow-flow-run",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        # (moto adds up the containers' memory: each needs one)
        containerDefinitions=[
            {"name": "flow-run", "image": "stratoflow:latest", "essential": True, "memory": 512}
        ],
    )
    variables = {
        "STRATOFLOW_ECS_CLUSTER": "stratoflow",
        "STRATOFLOW_ECS_TASK_DEFINITION": "stratoflow-flow-run",
        "STRATOFLOW_ECS_SUBNETS": subnet,
        "STRATOFLOW_ECS_SECURITY_GROUPS": group["GroupId"],
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        yield variables


def dispatch(stack: Stack, handler: ModuleType) -> tuple[FlowRun, dict[str, Any]]:
    run = run_deployment("hello-ecs", timeout=0)
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == {"batchItemFailures": []}
    claimed = runs.read_flow_run(run.id)
    assert claimed.state is not None
    assert claimed.state.type is StateType.PENDING
    assert claimed.infrastructure_id is not None
    task = stack.client("ecs").describe_tasks(
        cluster="stratoflow", tasks=[claimed.infrastructure_id]
    )["tasks"][0]
    return claimed, task


def test_the_ecs_dispatcher_starts_a_task_that_runs_the_flow(stack: Stack, ecs: dict[str, str]):
    handler = load_handler("ecs_dispatcher")
    run, task = dispatch(stack, handler)
    container = task["overrides"]["containerOverrides"][0]
    assert container["name"] == "flow-run"
    queue = get_platform().queues.name("default", "default")
    command = ["strato", "flow-run", "execute", run.id, "--from-queue", queue]
    assert container["command"] == command
    assert container["environment"] == [{"name": "GREETING", "value": "hi"}]
    assert (task["overrides"]["cpu"], task["overrides"]["memory"]) == ("512", "1024")

    # A container told another queue refuses the run (exit 3) and leaves it as it was.
    foreign = get_platform().queues.name("elsewhere", "default")
    refused = stack.strato("flow-run", "execute", run.id, "--from-queue", foreign, timeout=60)
    assert refused.returncode == 3, refused.stderr
    assert "belongs to work pool 'default'" in refused.stderr
    assert runs.read_flow_run(run.id).state_name == "Pending"

    # What the container does (its image runs the same command).
    done = stack.strato(*command[1:], timeout=60)
    assert done.returncode == 0, done.stderr
    # The flow's first attempt fails: its retry goes back to the queue, to a new task.
    assert runs.read_flow_run(run.id).state_name == "AwaitingRetry"
    assert handler.handler(sqs_event(stack), FakeLambdaContext()) == {"batchItemFailures": []}
    retried = runs.read_flow_run(run.id)
    assert retried.infrastructure_id not in (None, run.infrastructure_id)
    assert stack.strato("flow-run", "execute", run.id, "--from-queue", queue).returncode == 0
    finished = runs.read_flow_run(run.id)
    assert finished.state is not None
    assert finished.state.type is StateType.COMPLETED
    assert runs.read_result(finished) == 40


def test_a_task_that_stopped_before_its_run_ended_crashes_the_run(
    stack: Stack, ecs: dict[str, str]
):
    handler = load_handler("ecs_dispatcher")
    run, task = dispatch(stack, handler)
    event = {
        "version": "0",
        "id": "e7a8c1c2-0000-0000-0000-000000000000",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-11-21T12:00:00Z",
        "region": "us-east-1",
        "resources": [task["taskArn"]],
        "detail": {
            "clusterArn": task["clusterArn"],
            "taskArn": task["taskArn"],
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "overrides": task["overrides"],
            "containers": [{"name": "flow-run", "exitCode": 137, "lastStatus": "STOPPED"}],
        },
    }
    assert handler.on_task_stopped(event, FakeLambdaContext()) == {"flow_run_state": "Crashed"}
    crashed = runs.read_flow_run(run.id)
    assert crashed.state is not None
    assert crashed.state.type is StateType.CRASHED
    assert "Essential container in task exited" in (crashed.state.message or "")
    assert "exit code 137" in (crashed.state.message or "")
    # Delivered again (EventBridge is at least once): nothing more happens.
    assert handler.on_task_stopped(event, FakeLambdaContext()) == {"flow_run_state": None}
