"""A worker runs only its own pool's runs (docs/security.md): the attack of security
finding 3 of issue 12 against each worker, on moto, through the real handler modules.

Anything with worker permissions can send to every work queue. Here a message naming a
run of one pool is planted in another pool's queue; each worker (the Lambda worker and
the ECS dispatcher fed real SQS events with their `eventSourceARN`, the on-prem poller,
the dispatcher's container) refuses it: the run is not claimed and stays exactly as it
was, the message goes to the receiving queue's dead-letter queue with the reason (as a
malformed message does: it counts as processed, it is not redelivered), and a warning
names the run, its pool and queue and the queue the message arrived on.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _deploy_fixtures import Installation, deploy_files, installation  # noqa: F401

from stratoflow.deployments.runs import enqueue, schedule_flow_run
from stratoflow.dev.event_sources import sqs_event
from stratoflow.models import FlowRun
from stratoflow.states import Running, StateType
from stratoflow.workers.ecs import FROM_QUEUE_OPTION
from stratoflow.workers.execute import NotRunnable, execute_flow_run
from stratoflow.workers.messages import FlowRunMessage
from stratoflow.workers.poller import Poller, PollerOptions
from stratoflow.workers.queues import REASON_ATTRIBUTE

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"

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
          serverless: {type: lambda}
          fargate: {type: ecs}
        deployments:
          - {name: onprem-hello, entrypoint: "flows.py:hello", work_pool: onprem}
          - {name: other-hello, entrypoint: "flows.py:hello", work_pool: other}
          - {name: lambda-hello, entrypoint: "flows.py:hello", work_pool: serverless}
          - {name: ecs-hello, entrypoint: "flows.py:hello", work_pool: fargate}
    """,
}


@dataclass
class FakeLambdaContext:
    function_name: str = "stratoflow-worker"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:stratoflow-worker"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


class Spawned(list[list[str]]):
    """A poller's spawn that starts nothing: it records the command and runs nothing."""

    def __call__(self, command: list[str], env: Any) -> Any:
        self.append(command)
        raise AssertionError("the poller started a process for a foreign run")


@dataclass
class World:
    found: Installation

    @property
    def platform(self) -> Any:
        return self.found.platform

    def run(self, deployment: str, *, send: bool = True) -> FlowRun:
        run, _ = schedule_flow_run(
            self.platform,
            self.platform.deployments.get(deployment),
            scheduled_time=self.found.clock.now(),
        )
        if send:
            enqueue(self.platform, run)
        return run

    def plant(self, pool: str, run: FlowRun, **claimed: str) -> None:
        """What an attacker with worker permissions does: send a message naming `run`
        straight to `pool`'s default queue."""
        self.sqs.send_message(
            QueueUrl=self.platform.queues.url(pool, "default"),
            MessageBody=FlowRunMessage(flow_run_id=run.id, **claimed).body(),
        )

    @property
    def sqs(self) -> Any:
        return self.found.session.client("sqs")

    def event(self, pool: str) -> dict[str, Any]:
        """The messages waiting in `pool`'s default queue as a Lambda SQS event."""
        url = self.platform.queues.url(pool, "default")
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        messages = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
        ).get("Messages", [])
        assert messages, f"no message in the queue of pool {pool}"
        return sqs_event(messages, arn)

    def dead_letters(self, pool: str) -> dict[str, str]:
        """Body → reason of the messages in `pool`'s default dead-letter queue."""
        found = self.sqs.receive_message(
            QueueUrl=self.platform.queues.dead_letter_url(pool, "default"),
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return {m["Body"]: m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in found}

    def waiting(self, pool: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.platform.queues.url(pool, "default"),
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def stored(self, run: FlowRun) -> FlowRun:
        return self.found.services.backend.read_flow_run(run.id)  # type: ignore[no-any-return]


def load_handler(name: str) -> ModuleType:
    path = FUNCTIONS / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"foreign_{name}_handler", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def world(installation: Installation, tmp_path: Path) -> Iterator[World]:
    pools = ("onprem", "other", "serverless", "fargate")
    deploy_files(installation, tmp_path / "project", PROJECT, pools=pools)
    yield World(installation)


def assert_refused(world: World, run: FlowRun, before: FlowRun, arrived: str) -> None:
    """The run is untouched and the planted message is in `arrived`'s DLQ with a reason
    that names the run, its pool and the queue the message arrived on."""
    assert world.stored(run) == before
    assert before.state is not None and before.state.type is StateType.SCHEDULED
    (reason,) = world.dead_letters(arrived).values()
    queues = world.platform.queues
    for part in (
        run.id,
        f"work pool {before.work_pool_name!r}",
        queues.name(arrived, "default"),
        f"send it to {queues.name(before.work_pool_name, 'default')!r}",
    ):
        assert part in reason


def test_the_lambda_worker_refuses_a_process_pool_run_planted_in_its_queue(
    world: World, caplog: pytest.LogCaptureFixture
):
    handler = load_handler("lambda_worker")
    victim = world.run("onprem-hello")  # its own message waits in the onprem queue
    before = world.stored(victim)
    world.plant("serverless", victim)

    with caplog.at_level(logging.WARNING, logger="stratoflow.workers"):
        response = handler.handler(world.event("serverless"), FakeLambdaContext())

    # Dead-lettered with its reason and counted as processed, like a malformed record:
    # a batch item failure would only deliver it again until SQS dead-letters it
    # without a reason.
    assert response == {"batchItemFailures": []}
    assert_refused(world, victim, before, "serverless")
    assert any(victim.id in r.getMessage() and "Refusing" in r.getMessage() for r in caplog.records)
    assert world.waiting("onprem") == 1  # the run's own message is where it was

    # A message that claims a pool (here: the one it was planted in) is refused too.
    world.plant("serverless", victim, work_pool="serverless", work_queue="default")
    assert handler.handler(world.event("serverless"), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    assert world.stored(victim) == before

    # The pool's own runs still run.
    own = world.run("lambda-hello")
    assert handler.handler(world.event("serverless"), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    assert world.stored(own).state_name == "Completed"


def test_a_message_claiming_another_queue_than_its_runs_is_refused_on_the_runs_own_queue(
    world: World,
):
    handler = load_handler("lambda_worker")
    run = world.run("lambda-hello", send=False)
    before = world.stored(run)
    world.plant("serverless", run, work_pool="serverless", work_queue="elsewhere")
    assert handler.handler(world.event("serverless"), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    assert world.stored(run) == before
    (reason,) = world.dead_letters("serverless").values()
    assert "claims work pool 'serverless', work queue 'elsewhere'" in reason


@pytest.fixture
def ecs_cluster(world: World, monkeypatch: pytest.MonkeyPatch) -> Any:
    session = world.found.session
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto needs it
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="flow-runs", Description="runs", VpcId=vpc)
    client = session.client("ecs")
    client.create_cluster(clusterName="stratoflow")
    client.register_task_definition(
        family="stratoflow-flow-run",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "flow-run", "image": "stratoflow:latest", "essential": True, "memory": 512}
        ],
    )
    monkeypatch.setenv("STRATOFLOW_ECS_CLUSTER", "stratoflow")
    monkeypatch.setenv("STRATOFLOW_ECS_TASK_DEFINITION", "stratoflow-flow-run")
    monkeypatch.setenv("STRATOFLOW_ECS_SUBNETS", subnet)
    monkeypatch.setenv("STRATOFLOW_ECS_SECURITY_GROUPS", group["GroupId"])  # moto needs one
    return client


def test_the_ecs_dispatcher_refuses_another_pools_run_and_its_container_checks_again(
    world: World, ecs_cluster: Any
):
    handler = load_handler("ecs_dispatcher")
    victim = world.run("onprem-hello")
    before = world.stored(victim)
    world.plant("fargate", victim)

    assert handler.handler(world.event("fargate"), FakeLambdaContext()) == {"batchItemFailures": []}
    assert_refused(world, victim, before, "fargate")
    assert ecs_cluster.list_tasks(cluster="stratoflow")["taskArns"] == []

    # The pool's own run is claimed and started, and its container is told the queue.
    own = world.run("ecs-hello")
    assert handler.handler(world.event("fargate"), FakeLambdaContext()) == {"batchItemFailures": []}
    claimed = world.stored(own)
    assert claimed.state_name == "Pending"
    (task,) = ecs_cluster.describe_tasks(cluster="stratoflow", tasks=[claimed.infrastructure_id])[
        "tasks"
    ]
    command = task["overrides"]["containerOverrides"][0]["command"]
    fargate_queue = world.platform.queues.name("fargate", "default")
    assert command == ["strato", "flow-run", "execute", own.id, FROM_QUEUE_OPTION, fargate_queue]

    # A container started for the fargate queue runs no other pool's run...
    with pytest.raises(NotRunnable, match="belongs to work pool 'onprem'"):
        execute_flow_run(victim.id, world.platform, queue_name=fargate_queue)
    assert world.stored(victim) == before
    # ...and runs its own.
    state = execute_flow_run(own.id, world.platform, queue_name=fargate_queue)
    assert state.type is StateType.COMPLETED


def test_a_poller_refuses_a_run_of_another_pool_planted_in_its_queue(world: World):
    victim = world.run("other-hello", send=False)
    before = world.stored(victim)
    world.plant("onprem", victim)
    spawned = Spawned()
    options = PollerOptions(pool="onprem", name="edge", wait_seconds=0, background=False)
    poller = Poller(world.platform, options, spawn=spawned)
    poller.run(max_iterations=2)

    assert spawned == []
    assert_refused(world, victim, before, "onprem")
    assert world.waiting("onprem") == 0  # deleted once dead-lettered: never redelivered

    # The pool's own run is still started.
    own = world.run("onprem-hello")
    started: list[str] = []

    def spawn(command: list[str], env: Any) -> Any:
        started.append(command[-1])
        world.found.services.backend.set_flow_run_state(command[-1], Running())
        return _Exited()

    Poller(world.platform, options, spawn=spawn).run(max_iterations=1)
    assert started == [own.id]


class _Exited:
    pid = 4242
    returncode = 0

    def poll(self) -> int:
        return 0

    def terminate(self) -> None: ...

    def kill(self) -> None: ...
