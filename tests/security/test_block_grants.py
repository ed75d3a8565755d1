"""Blocks (docs/blocks.md): who may read and write them, judged against the synthesized
template's policies with the policy evaluator (the emulator enforces no IAM).

Workers load blocks: each worker principal may read the block secrets every pool may read
(`<prefix>/blocks/_all/...`) and those of the pools it runs (`<prefix>/blocks/<pool>/...`),
no other pool's. Nobody of the stack may write a block: no worker role may put, change,
restore or delete a block secret, nor write a `BLOCK#` item (a worker must not redirect
another pool's flows by changing the configuration they load)."""

from __future__ import annotations

from typing import Any

import pytest

from infra import permissions
from stratoflow import resources
from stratoflow.resources import BLOCK_SECRETS_ALL_POOLS, block_secret_name
from tests.security._iam import (
    Request,
    is_allowed,
    managed_policy_statements,
    only_resource,
    resolve,
    role_of,
    role_statements,
)

PREFIX = "stratoflow-full"
SCOPES = (BLOCK_SECRETS_ALL_POOLS, "default", "etl-nightly", "fast", "gpu")
"""The full stack's pools (process: default, etl-nightly; lambda: fast; ecs: gpu)."""
READS = {
    "on-prem default": {BLOCK_SECRETS_ALL_POOLS, "default"},
    "on-prem etl-nightly": {BLOCK_SECRETS_ALL_POOLS, "etl-nightly"},
    "lambda worker": {BLOCK_SECRETS_ALL_POOLS, "fast"},
    "ecs task": {BLOCK_SECRETS_ALL_POOLS, "gpu"},
    "scheduler": set(),
    "automations": set(),
    "ecs dispatcher": set(),
}
WORKERS = ("on-prem default", "on-prem etl-nightly", "lambda worker", "ecs task")
SECRET_WRITES = (
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:TagResource",
    "secretsmanager:PutResourcePolicy",
)


def _function_role(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    function = only_resource(template, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{name}")
    return role_statements(template, role_of(function["Role"]))


@pytest.fixture(scope="module")
def principals(full_template_json: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    template = full_template_json
    task = only_resource(template, "AWS::ECS::TaskDefinition")
    return {
        "on-prem default": managed_policy_statements(template, "on-prem-default"),
        "on-prem etl-nightly": managed_policy_statements(template, "on-prem-etl-nightly"),
        "lambda worker": _function_role(template, "lambda-worker"),
        "ecs task": role_statements(template, role_of(task["TaskRoleArn"])),
        "scheduler": _function_role(template, "scheduler"),
        "automations": _function_role(template, "automations"),
        "ecs dispatcher": _function_role(template, "ecs-dispatcher"),
    }


def secret_arn(scope: str, slug: str = "secret", name: str = "api-token") -> str:
    """As Secrets Manager names it: the secret's name and a random 6-character suffix."""
    return (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
        f"{block_secret_name(PREFIX, scope, slug, name)}-AbC123"
    )


@pytest.mark.parametrize("principal", sorted(READS))
def test_each_principal_reads_the_block_secrets_of_its_own_scopes_only(
    principals: dict[str, list[dict[str, Any]]], principal: str
) -> None:
    statements = principals[principal]
    readable = {
        scope
        for scope in SCOPES
        if is_allowed(statements, Request("secretsmanager:GetSecretValue", secret_arn(scope)))
    }
    assert readable == READS[principal]


@pytest.mark.parametrize("principal", sorted(READS))
def test_no_principal_of_the_stack_may_write_a_block_secret(
    principals: dict[str, list[dict[str, Any]]], principal: str
) -> None:
    for scope in SCOPES:
        for action in SECRET_WRITES:
            request = Request(action, secret_arn(scope))
            assert not is_allowed(principals[principal], request), (scope, action)


@pytest.mark.parametrize("worker", WORKERS)
def test_a_pool_scope_does_not_reach_a_pool_whose_name_extends_it(
    principals: dict[str, list[dict[str, Any]]], worker: str
) -> None:
    # `<prefix>/blocks/etl/*` must not match `<prefix>/blocks/etl-nightly/...`: the scope
    # ends with `/`. Nor may an installation's grant reach another prefix's blocks.
    other = "arn:aws:secretsmanager:us-east-1:123456789012:secret:stratoflow-full-2/blocks/_all/x"
    assert not is_allowed(principals[worker], Request("secretsmanager:GetSecretValue", other))
    assert resources.block_secrets_prefix(PREFIX, "default").endswith("/default/")


@pytest.fixture(scope="module")
def table_arn(full_template_json: dict[str, Any]) -> str:
    (table,) = [
        logical_id
        for logical_id, r in full_template_json["Resources"].items()
        if r["Type"] == "AWS::DynamoDB::Table"
    ]
    return str(resolve({"Fn::GetAtt": [table, "Arn"]}))


@pytest.mark.parametrize("worker", WORKERS)
@pytest.mark.parametrize("action", ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"))
def test_no_worker_may_write_a_block_item_but_every_worker_may_read_one(
    principals: dict[str, list[dict[str, Any]]], table_arn: str, worker: str, action: str
) -> None:
    key = resources.block_key("s3-bucket", "raw-data")
    context = {"dynamodb:LeadingKeys": [key[resources.PARTITION_KEY]]}
    assert not is_allowed(principals[worker], Request(f"dynamodb:{action}", table_arn, context))
    assert is_allowed(principals[worker], Request("dynamodb:GetItem", table_arn, context))


def test_block_partitions_are_not_run_partitions() -> None:
    block = resources.block_key("secret", "x")[resources.PARTITION_KEY]
    for partitions in (permissions.RUN_PARTITIONS, permissions.pool_run_partitions("etl")):
        assert not any(
            p == block or (p.endswith("*") and block.startswith(p[:-1])) for p in partitions
        )
