"""Finding 1, integrity (docs/security.md "A pickle is loaded only when its signature
verifies"): who may read which result-signing key, judged against the synthesized
template's policies (the emulator enforces no IAM). The attack: a worker of one pool
reads another pool's (or the operators') key, to sign a pickle that pool's runs or an
operator would then trust."""

from __future__ import annotations

from typing import Any

import pytest

from stratoflow.resources import (
    OPERATORS_SIGNING_DOMAIN,
    TASKS_SIGNING_DOMAIN,
    result_key_secret_name,
)
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
DOMAINS = ("default", "etl-nightly", "fast", "gpu", OPERATORS_SIGNING_DOMAIN, TASKS_SIGNING_DOMAIN)
"""The full stack's pools (process: default, etl-nightly; lambda: fast; ecs: gpu)."""


@pytest.fixture(scope="module")
def key_arns(full_template_json: dict[str, Any]) -> dict[str, str]:
    """Signing domain → the ARN (`Ref` of its secret) the evaluator sees."""
    by_name = {
        str(resolve(r["Properties"]["Name"])): str(resolve({"Ref": logical_id}))
        for logical_id, r in full_template_json["Resources"].items()
        if r["Type"] == "AWS::SecretsManager::Secret"
    }
    return {domain: by_name[result_key_secret_name(PREFIX, domain)] for domain in DOMAINS}


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
}


@pytest.mark.parametrize("principal", sorted(READS))
def test_each_principal_reads_the_keys_of_its_own_pools_only(
    principals: dict[str, list[dict[str, Any]]], key_arns: dict[str, str], principal: str
) -> None:
    statements = principals[principal]
    readable = {
        domain
        for domain, arn in key_arns.items()
        if is_allowed(statements, Request("secretsmanager:GetSecretValue", arn))
    }
    assert readable == READS[principal]
    for domain, arn in key_arns.items():  # nor may it replace one
        for action in ("secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret"):
            assert not is_allowed(statements, Request(action, arn)), (domain, action)


def test_every_pool_and_the_operators_have_a_generated_key(
    full_template_json: dict[str, Any],
) -> None:
    for domain in DOMAINS:
        secret = only_resource(
            full_template_json,
            "AWS::SecretsManager::Secret",
            Name=result_key_secret_name(PREFIX, domain),
        )
        generated = secret["GenerateSecretString"]
        assert generated["PasswordLength"] >= 64 and generated["ExcludePunctuation"]
        assert "SecretString" not in secret  # no value in the template
