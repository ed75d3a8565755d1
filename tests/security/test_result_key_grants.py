"""Finding 1, integrity (docs/security.md "A pickle is loaded only when its signature
verifies"): who may read which result-signing key, judged against the synthesized
template's policies (the emulator enforces no IAM). The attack: a worker of one pool
reads another pool's (or the operators') key, to sign a pickle that pool's runs or an
operator would then trust."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.result_keys import RESOURCE_TYPE
from stratoflow.resources import (
    OPERATORS_SIGNING_DOMAIN,
    TASKS_SIGNING_DOMAIN,
    result_key_parameter_name,
)
from tests.security._iam import (
    Request,
    is_allowed,
    managed_policy_statements,
    only_resource,
    role_of,
    role_statements,
)

PREFIX = "stratoflow-full"
DOMAINS = ("default", "etl-nightly", "fast", "gpu", OPERATORS_SIGNING_DOMAIN, TASKS_SIGNING_DOMAIN)
"""The full stack's pools (process: default, etl-nightly; lambda: fast; ecs: gpu)."""


@pytest.fixture(scope="module")
def key_arns() -> dict[str, str]:
    """Signing domain → the ARN of its key parameter (built from the resource model's
    name, as IAM sees a `GetParameter` of it, with or without a `:<version>` selector)."""
    return {
        domain: "arn:aws:ssm:us-east-1:123456789012:parameter"
        + result_key_parameter_name(PREFIX, domain)
        for domain in DOMAINS
    }


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
        "task worker": _function_role(template, "task-worker"),
        "result-keys handler": _function_role(template, "result-keys"),
    }


READS = {
    "on-prem default": {"default"},
    "on-prem etl-nightly": {"etl-nightly"},
    "lambda worker": {"fast"},
    "ecs task": {"gpu"},
    "scheduler": set(),
    "automations": set(),
    "ecs dispatcher": set(),
    "task worker": {TASKS_SIGNING_DOMAIN},  # background tasks: its own domain only
    "result-keys handler": set(),  # makes and deletes them, at deploy time; reads none
}
READS_OTHERWISE = (
    "ssm:GetParameters",
    "ssm:GetParameterHistory",
    "ssm:GetParametersByPath",
    "ssm:DescribeParameters",
)
"""Other ways to a parameter's value (or to the names): nobody in the stack has them."""
CHANGES = (
    "ssm:PutParameter",
    "ssm:DeleteParameter",
    "ssm:DeleteParameters",
    "ssm:LabelParameterVersion",
    "ssm:AddTagsToResource",
)


@pytest.mark.parametrize("principal", sorted(READS))
def test_each_principal_reads_the_keys_of_its_own_pools_only(
    principals: dict[str, list[dict[str, Any]]], key_arns: dict[str, str], principal: str
) -> None:
    statements = principals[principal]
    readable = {
        domain
        for domain, arn in key_arns.items()
        if is_allowed(statements, Request("ssm:GetParameter", arn))
    }
    assert readable == READS[principal]
    for domain, arn in key_arns.items():
        for action in READS_OTHERWISE:
            assert not is_allowed(statements, Request(action, arn)), (domain, action)
        if principal != "result-keys handler":  # nor may it replace or delete one
            for action in CHANGES:
                assert not is_allowed(statements, Request(action, arn)), (domain, action)
    # The parameters are under the AWS managed key aws/ssm (no kms grant: docs/security.md).
    assert not any("kms:" in str(s.get("Action")) for s in statements)


def test_only_the_handler_changes_the_keys_and_only_the_stacks(
    principals: dict[str, list[dict[str, Any]]], key_arns: dict[str, str]
) -> None:
    handler = principals["result-keys handler"]
    for arn in key_arns.values():
        for action in ("ssm:PutParameter", "ssm:DeleteParameter"):
            assert is_allowed(handler, Request(action, arn))
        for action in ("ssm:GetParameter", "ssm:LabelParameterVersion", "ssm:DeleteParameters"):
            assert not is_allowed(handler, Request(action, arn))
    prefix = "arn:aws:ssm:us-east-1:123456789012:parameter"
    for other in (
        f"{prefix}/stratoflow-full/result-keys/another-pool",
        f"{prefix}/stratoflow-full/other",
        f"{prefix}/stratoflow-dev/result-keys/default",
    ):
        assert not is_allowed(handler, Request("ssm:PutParameter", other))
    # It copies an earlier version's secret of each domain into its new parameter.
    secrets = "arn:aws:secretsmanager:us-east-1:123456789012:secret:stratoflow-full/result-keys"
    assert is_allowed(handler, Request("secretsmanager:GetSecretValue", f"{secrets}/fast-AbC123"))
    assert not is_allowed(
        handler, Request("secretsmanager:GetSecretValue", f"{secrets}/other-AbC123")
    )
    assert not is_allowed(
        handler, Request("secretsmanager:PutSecretValue", f"{secrets}/fast-AbC123")
    )


def test_every_pool_and_the_operators_have_a_key_made_at_deploy_time(
    full_template_json: dict[str, Any],
) -> None:
    made = {
        r["Properties"]["Domain"]: r
        for r in full_template_json["Resources"].values()
        if r["Type"] == RESOURCE_TYPE
    }
    assert set(made) == set(DOMAINS)
    for resource in made.values():
        # The name and domain only: the key is made by the handler, never in a template.
        assert set(resource["Properties"]) == {"ServiceToken", "QueuePrefix", "Domain"}
        assert resource["Properties"]["QueuePrefix"] == PREFIX
    kinds = {r["Type"] for r in full_template_json["Resources"].values()}
    assert "AWS::SecretsManager::Secret" not in kinds
    # The template's one parameter is the web UI's sign-in settings (no secret), not a key.
    parameters = [
        r["Properties"]
        for r in full_template_json["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
    ]
    assert all("/result-keys/" not in json.dumps(p) for p in parameters)
    assert all(p.get("Type") == "String" for p in parameters)
