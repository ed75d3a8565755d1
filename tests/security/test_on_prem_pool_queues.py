"""Finding 3 (docs/security.md): each process pool's on-prem workers get their own
policy. The attack, judged by the policy evaluator (tests/security/_iam.py): a host of
pool `default` uses its credentials on pool `etl-nightly`'s queues. The emulator enforces
no IAM, so the policy documents of the synthesized stack are what is judged."""

from __future__ import annotations

from typing import Any

import pytest

from infra import outputs
from stratoflow import resources
from stratoflow.run_ids import new_flow_run_id, subflow_run_id
from tests.security._iam import Request, is_allowed, managed_policy_statements, resolve
from tests.security.test_worker_table_policy import policies, table_arn, write

__all__ = ["policies", "table_arn"]  # fixtures of the run-item test, reused here

PREFIX = "stratoflow-full"
CONSUME = ("ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes")


@pytest.fixture(scope="module")
def queue_arns(full_template_json: dict[str, Any]) -> dict[str, str]:
    """SQS queue name → the ARN the evaluator sees."""
    return {
        str(resolve(r["Properties"]["QueueName"])): str(resolve({"Fn::GetAtt": [lid, "Arn"]}))
        for lid, r in full_template_json["Resources"].items()
        if r["Type"] == "AWS::SQS::Queue" and "QueueName" in r["Properties"]
    }


@pytest.fixture(scope="module")
def pool_policies(full_template_json: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        pool: managed_policy_statements(full_template_json, f"{PREFIX}-on-prem-{pool}")
        for pool in ("default", "etl-nightly")
    }


def queue(pool: str, name: str = "default") -> str:
    return resources.work_queue_name(PREFIX, pool, name)


def dlq(pool: str, name: str = "default") -> str:
    return resources.dead_letter_queue_name(PREFIX, pool, name)


def may(statements: list[dict[str, Any]], action: str, arn: str) -> bool:
    return is_allowed(statements, Request(f"sqs:{action}", arn))


@pytest.mark.parametrize("action", CONSUME)
def test_a_pool_consumes_its_own_queues_only(
    pool_policies: dict[str, list[dict[str, Any]]], queue_arns: dict[str, str], action: str
) -> None:
    a = pool_policies["default"]
    assert may(a, action, queue_arns[queue("default")])
    assert may(a, action, queue_arns[queue("default", "critical")])
    # The attack: pool default's host drains (or hides, by visibility) pool etl-nightly's runs.
    for other in (queue("etl-nightly"), dlq("etl-nightly"), queue("fast"), queue("gpu")):
        assert not may(a, action, queue_arns[other]), other
    # ...and the other way round.
    b = pool_policies["etl-nightly"]
    assert may(b, action, queue_arns[queue("etl-nightly")])
    assert not may(b, action, queue_arns[queue("default")])
    assert not may(b, action, queue_arns[queue("default", "critical")])


def test_a_pool_sends_to_its_own_queues_and_dlqs_only(
    pool_policies: dict[str, list[dict[str, Any]]], queue_arns: dict[str, str]
) -> None:
    a = pool_policies["default"]
    # A run not due yet goes back to its own queue; a malformed message to its DLQ.
    for own in (queue("default"), queue("default", "critical"), dlq("default")):
        assert may(a, "SendMessage", queue_arns[own]), own
    for other in (queue("etl-nightly"), dlq("etl-nightly"), queue("fast"), queue("gpu")):
        assert not may(a, "SendMessage", queue_arns[other]), other
    assert not may(a, "SendMessage", queue_arns[dlq("fast")])


def test_start_runs_in_grants_only_the_send_to_the_named_pool(
    pool_policies: dict[str, list[dict[str, Any]]], queue_arns: dict[str, str]
) -> None:
    """The full stack's `on_prem_may_start_runs_in: {"etl-nightly": ["fast"]}`."""
    b = pool_policies["etl-nightly"]
    assert may(b, "SendMessage", queue_arns[queue("fast")])
    assert not may(b, "SendMessage", queue_arns[dlq("fast")])
    for action in CONSUME:
        assert not may(b, action, queue_arns[queue("fast")])
    for other in (queue("default"), queue("gpu"), dlq("default")):
        assert not may(b, "SendMessage", queue_arns[other]), other


def test_a_pool_writes_only_its_own_runs(
    pool_policies: dict[str, list[dict[str, Any]]],
    policies: dict[str, list[dict[str, Any]]],
    table_arn: str,
) -> None:
    """Run ids carry their pool's tag (stratoflow.run_ids), and each pool's policy may
    write only runs (with their task runs and subflows) and heartbeats of its own pool,
    plus the runs of the pools it may start runs in. The attack: pool default's host
    rewrites or deletes a run of pool etl-nightly, or plants one with a plain id."""
    own = new_flow_run_id("default")
    mine = [
        resources.flow_run_key(own),
        resources.task_run_key(own, "t1"),
        resources.flow_run_key(subflow_run_id(own)),
        resources.worker_key("default", "host-1"),
    ]
    theirs = [
        resources.flow_run_key(new_flow_run_id("etl-nightly")),
        resources.task_run_key(new_flow_run_id("etl-nightly"), "t1"),
        resources.flow_run_key(new_flow_run_id("fast")),
        resources.flow_run_key(new_flow_run_id(None)),  # an operator's, or an earlier id
        resources.flow_run_key("evil"),
        resources.worker_key("etl-nightly", "host-1"),
    ]
    a = pool_policies["default"]
    for action in ("PutItem", "UpdateItem", "DeleteItem"):
        for key in mine:
            assert is_allowed(a, write(table_arn, key, action)), (key, action)
        for key in theirs:
            assert not is_allowed(a, write(table_arn, key, action)), (key, action)
    # etl-nightly may start runs in fast (on_prem_may_start_runs_in): it writes those too.
    b = pool_policies["etl-nightly"]
    assert is_allowed(b, write(table_arn, resources.flow_run_key(new_flow_run_id("etl-nightly"))))
    assert is_allowed(b, write(table_arn, resources.flow_run_key(new_flow_run_id("fast"))))
    assert not is_allowed(b, write(table_arn, resources.flow_run_key(own)))
    # The shared items stay shared (cache entries are signed; usage is not a definition;
    # an event waiter is only a hint: the waiting run's own state decides, docs/security.md).
    shared = (
        resources.cache_key("k"),
        resources.concurrency_key("db"),
        resources.event_waiter_key("acme.model.trained", own, "event-0"),
    )
    for key in shared:
        assert is_allowed(a, write(table_arn, key)) and is_allowed(b, write(table_arn, key))
    # The Lambda worker and ECS task roles write runs of every pool (run_deployment).
    for worker in ("lambda worker", "ecs task"):
        for key in (*mine, *theirs[:4]):
            assert is_allowed(policies[worker], write(table_arn, key)), (worker, key)


@pytest.mark.parametrize("worker", ["lambda worker", "ecs task"])
def test_lambda_and_ecs_roles_still_send_to_every_work_queue(
    policies: dict[str, list[dict[str, Any]]], queue_arns: dict[str, str], worker: str
) -> None:
    """Unchanged by the per-pool split: a flow on a Lambda or ECS pool may
    `run_deployment` a deployment of any pool."""
    for name in (queue("default"), queue("etl-nightly"), queue("fast"), queue("gpu")):
        assert may(policies[worker], "SendMessage", queue_arns[name]), name


def test_each_pool_has_its_outputs(full_template_json: dict[str, Any]) -> None:
    found = full_template_json["Outputs"]
    for pool in ("default", "etl-nightly"):
        assert outputs.on_prem_policy_output(pool) in found
        assert outputs.on_prem_role_output(pool) in found
    for pool in ("fast", "gpu"):  # no on-prem worker consumes a lambda or ecs pool
        assert outputs.on_prem_policy_output(pool) not in found
