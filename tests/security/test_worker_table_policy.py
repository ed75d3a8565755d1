"""What the worker roles of the synthesized stack may write to the state table, judged by
the policy evaluator (tests/security/_iam.py): the emulator enforces no IAM.

The point of finding 2 (docs/security.md): a worker's write of a run item that carries a
definition's index attributes is allowed (IAM sees only the partition key), so the
defence against it is the readers' key check, tested in test_index_injection.py."""

from __future__ import annotations

from typing import Any

import pytest

from stratoflow import resources
from stratoflow.run_ids import new_flow_run_id
from tests.security._iam import (
    Request,
    is_allowed,
    managed_policy_statements,
    only_resource,
    resolve,
    role_of,
    role_statements,
)

WORKERS = ("on-prem worker", "lambda worker", "ecs task")
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")


@pytest.fixture(scope="module")
def policies(full_template_json: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    template = full_template_json
    function = only_resource(
        template, "AWS::Lambda::Function", FunctionName="stratoflow-full-lambda-worker"
    )
    task = only_resource(template, "AWS::ECS::TaskDefinition")
    return {
        "on-prem worker": managed_policy_statements(template, "on-prem-default"),
        "lambda worker": role_statements(template, role_of(function["Role"])),
        "ecs task": role_statements(template, role_of(task["TaskRoleArn"])),
    }


@pytest.fixture(scope="module")
def table_arn(full_template_json: dict[str, Any]) -> str:
    (table,) = [
        logical_id
        for logical_id, r in full_template_json["Resources"].items()
        if r["Type"] == "AWS::DynamoDB::Table"
    ]
    return str(resolve({"Fn::GetAtt": [table, "Arn"]}))


def write(table_arn: str, key: dict[str, str], action: str = "PutItem") -> Request:
    """A write of the item `key`: IAM's only view of the item is its partition key."""
    return Request(
        f"dynamodb:{action}",
        table_arn,
        {"dynamodb:LeadingKeys": [key[resources.PARTITION_KEY]]},
    )


@pytest.mark.parametrize("worker", WORKERS)
@pytest.mark.parametrize("action", WRITES)
def test_a_worker_may_write_a_run_item_whatever_index_attributes_it_carries(
    policies: dict[str, list[dict[str, Any]]], table_arn: str, worker: str, action: str
) -> None:
    # The attack's write: `FLOWRUN#evil` / META with gsi3pk = DEPLOYMENTS (or AUTOMATIONS,
    # WORKPOOLS, ...). Its index attributes are not part of the request IAM judges.
    # (A run of the on-prem policy's pool: it may write no other, see
    # test_on_prem_pool_queues.py.)
    key = resources.flow_run_key(new_flow_run_id("default"))
    assert is_allowed(policies[worker], write(table_arn, key, action))
    # ...and no statement could have judged them: none conditions on the attributes.
    conditions = [str(s.get("Condition", "")) for s in policies[worker]]
    assert not any("dynamodb:Attributes" in c for c in conditions)


@pytest.mark.parametrize("worker", WORKERS)
@pytest.mark.parametrize(
    "key",
    [
        resources.deployment_key("fan-out"),
        resources.work_pool_key("serverless"),
        resources.automation_key("a1"),
        resources.automation_name_key("pause-everything"),
        resources.automation_bucket_key("a1", "*"),
        resources.concurrency_limit_key("db"),
        resources.concurrency_limit_key("tag:gpu"),
        # A forged mark (far in the future) would stop a deployment's schedule.
        resources.schedule_marks_key("fan-out"),
        resources.SCHEDULER_CURSOR_KEY,
        # A planted session would sign someone in to the web UI as an operator.
        resources.ui_session_key("planted"),
    ],
    ids=lambda key: key[resources.PARTITION_KEY].split("#")[0],
)
def test_a_worker_may_not_write_a_definition_item(
    policies: dict[str, list[dict[str, Any]]],
    table_arn: str,
    worker: str,
    key: dict[str, str],
) -> None:
    for action in WRITES:
        assert not is_allowed(policies[worker], write(table_arn, key, action))


@pytest.mark.parametrize("worker", WORKERS)
def test_a_worker_may_write_a_limits_usage_and_only_read_its_definition(
    policies: dict[str, list[dict[str, Any]]], table_arn: str, worker: str
) -> None:
    """Concurrency limits (docs/security.md, finding 2): holders write the usage item
    (`CONCURRENCY#<name>`) and read the definition (`CONCURRENCYLIMIT#<name>`), which
    the `CONCURRENCY#*` pattern of the worker policies does not cover."""
    usage, definition = resources.concurrency_key("db"), resources.concurrency_limit_key("db")
    for action in ("PutItem", "UpdateItem"):
        assert is_allowed(policies[worker], write(table_arn, usage, action))
    for action in WRITES:
        assert not is_allowed(policies[worker], write(table_arn, definition, action))
    # What acquiring calls: one BatchGetItem of both items (GetItem when throttled).
    for action in ("BatchGetItem", "GetItem"):
        assert is_allowed(policies[worker], write(table_arn, definition, action))
