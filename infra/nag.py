"""cdk-nag AwsSolutions findings this stack accepts, each with its reason.

cdk-nag (v3) runs as a CDK policy-validation plugin (`infra/app.py`): any finding not
acknowledged here fails `cdk synth`. Every acknowledgment names one finding (rule id,
plus the resource for IAM wildcards) on one construct. docs/infrastructure.md lists
them; a test checks that every rule acknowledged here is documented there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct

from infra.constructs.task_worker import TASK_RESULT_PREFIXES
from infra.permissions import block_secrets_arn
from stratoflow import resources
from stratoflow.automations.secrets import secret_name

if TYPE_CHECKING:
    from infra.stacks.stratoflow_stack import StratoflowStack

PLUGIN = "AwsSolutions"

LAMBDA_RUNTIME = (
    "Python 3.12 is the runtime stratoflow targets: the code bundle is pip-installed as "
    "cp312 manylinux wheels, so a newer runtime is a deliberate change of the bundle."
)
OBJECT_PREFIX = (
    "Object-level access below one fixed prefix of one bucket: code bundles are "
    f"content-addressed ({resources.CODE_PREFIX}<sha256>.zip), results are keyed by run "
    f"id ({resources.RESULTS_PREFIX}<flow run id>/...); the keys are not known when the "
    "stack is deployed."
)
LIST_STREAMS = (
    "dynamodb:ListStreams supports no resource-level permission; the stream event source "
    "adds it. Reading records is limited to this table's stream."
)
ECS_ENVIRONMENT = (
    "The container's environment holds resource names (table, buckets, log group, queue "
    "prefix), no secret; they change only with the stack, which updates the task "
    "definition."
)
FAILURE_QUEUE = (
    "This queue is the on-failure destination of the automations stream event source (a "
    "dead-letter queue in function); a DLQ of its own would only move the same records."
)

ECR_AUTHORIZATION = (
    "ecr:GetAuthorizationToken supports no resource-level permission (the token is per "
    "registry, not per repository); the execution role needs it to pull the task's ECR "
    "image. The pull actions (BatchGetImage, GetDownloadUrlForLayer, "
    "BatchCheckLayerAvailability) stay limited to the image's repository ARN."
)

AUTOMATION_SECRETS = (
    "secretsmanager:GetSecretValue on the secrets named <queue prefix>/automations/*: one "
    "secret per automation (webhook URL and headers), created with the automation, so "
    "their names are not known when the stack is deployed; Secrets Manager also appends a "
    "random suffix to every secret's ARN. No other secret is readable, and only this role "
    "may read them (workers may not)."
)

RESULT_KEYS_INVOKE = (
    "lambda:InvokeFunction on the result-keys custom resource's handler and its versions "
    "(`<handler ARN>:*`), which CDK's custom resource provider framework grants its own "
    "function: that function's one permission besides its log group. The handler is "
    "invoked when the stack is deployed, never at run time."
)

BLOCK_SECRETS = (
    "secretsmanager:GetSecretValue on the secrets named <queue prefix>/blocks/<scope>/*: "
    "one secret per block document, saved by operators at any time (its type slug and "
    "name are not known when the stack is deployed); Secrets Manager also appends a random "
    "suffix to every secret's ARN. Each worker principal reads only the scope every pool "
    "may read (_all) and its own pools' scopes, and writes none."
)


TASK_RESULTS = (
    "Object-level access below the two results prefixes of background task runs: "
    f"{resources.RESULTS_PREFIX}task-runs/<task run id>... and "
    f"{resources.RESULTS_PREFIX}cache/<cache key> (signed cache entries); the keys are not "
    "known when the stack is deployed. The task worker cannot read or write flow runs' "
    "results."
)


UI_GEO_RESTRICTION = (
    "The web UI serves an installation's operators wherever they work, and every page but "
    "the sign-in needs a Cognito session; restrict countries with the distribution's geo "
    "restriction where a policy asks for it."
)
UI_WAF = (
    "A web ACL is a fixed cost (about $5 a month plus $1 per rule) for an installation that "
    "otherwise costs about a dollar a month idle, and every page and action of the UI needs "
    "a Cognito session (and every POST its CSRF token). `-c ui_web_acl_arn=...` attaches "
    "a web ACL of yours (scope CLOUDFRONT, in us-east-1); then this finding does not arise."
)
UI_DEFAULT_CERTIFICATE = (
    "The distribution uses CloudFront's default *.cloudfront.net certificate, for which "
    "CloudFront fixes the minimum viewer TLS version (TLSv1) whatever the setting: a "
    "stricter policy needs a domain and an ACM certificate of your own, which the stack "
    "cannot create. Current browsers negotiate TLS 1.2 or 1.3; HSTS keeps them on HTTPS."
)
UI_MFA_OPTIONAL = (
    "Multi-factor sign-in (TOTP) is offered to every user and optional, so that an "
    "administrator can invite users before they have an authenticator app; require it for "
    "the pool with `aws cognito-idp set-user-pool-mfa-config --mfa-configuration ON` "
    "where a policy asks for it (docs/ui.md)."
)
UI_FEATURE_PLAN = (
    "The Plus plan (threat protection) costs $0.02 per monthly active user with no free "
    "tier; the Lite plan's first 10,000 monthly active users are free, so an idle UI costs "
    "nothing. The pool has no self sign-up (an administrator adds each user to a group), a "
    "strong password policy and optional TOTP MFA."
)


@dataclass(frozen=True)
class Finding:
    construct: IConstruct
    rule: str
    reason: str


def _arn_of(stack: Stack, resource: IConstruct) -> str:
    """`<LogicalId.Arn>`, as cdk-nag prints a `Fn::GetAtt ... Arn` in a finding."""
    assert isinstance(resource, CfnResource)
    return f"<{stack.resolve(resource.logical_id)}.Arn>"


def _cfn(construct: IConstruct) -> IConstruct:
    child = construct.node.default_child
    assert child is not None
    return child


def findings(stack: StratoflowStack) -> list[Finding]:
    code = _arn_of(stack, stack.buckets.code.node.default_child)  # type: ignore[arg-type]
    results = _arn_of(stack, stack.buckets.results.node.default_child)  # type: ignore[arg-type]
    object_rules = {
        f"AwsSolutions-IAM5[Resource::{code}/{resources.CODE_PREFIX}*]": OBJECT_PREFIX,
        f"AwsSolutions-IAM5[Resource::{results}/{resources.RESULTS_PREFIX}*]": OBJECT_PREFIX,
    }
    runners: list[IConstruct] = [
        stack.functions.lambda_worker.role,  # type: ignore[list-item]
        stack.ecs.task_role,
        *(access.policy for access in stack.on_prem.values()),
    ]
    found = [
        Finding(runner, rule, reason) for runner in runners for rule, reason in object_rules.items()
    ]
    found += [
        Finding(function, "AwsSolutions-L1", LAMBDA_RUNTIME) for function in stack.functions.all
    ]
    found += [
        Finding(
            stack.functions.automations.role,  # type: ignore[arg-type]
            "AwsSolutions-IAM5[Resource::*]",
            LIST_STREAMS,
        ),
        Finding(
            stack.functions.automations.role,  # type: ignore[arg-type]
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:"
            f"<AWS::AccountId>:secret:{secret_name(stack.options.names.queue_prefix, '*')}]",
            AUTOMATION_SECRETS,
        ),
        Finding(stack.result_keys.handler, "AwsSolutions-L1", LAMBDA_RUNTIME),
        Finding(
            stack.result_keys.provider_role,
            f"AwsSolutions-IAM5[Resource::{_arn_of(stack, _cfn(stack.result_keys.handler))}:*]",
            RESULT_KEYS_INVOKE,
        ),
        Finding(stack.ecs.task_definition, "AwsSolutions-ECS2", ECS_ENVIRONMENT),
        Finding(stack.functions.automations_failures, "AwsSolutions-SQS3", FAILURE_QUEUE),
    ]
    found += _block_secret_findings(stack)
    found += _web_ui_findings(stack)
    found += _task_worker_findings(stack, results)
    if stack.ecs.pulls_from_ecr:
        found.append(
            Finding(stack.ecs.execution_role, "AwsSolutions-IAM5[Resource::*]", ECR_AUTHORIZATION)
        )
    return found


def suppress(stack: StratoflowStack) -> None:
    for finding in findings(stack):
        Validations.of(finding.construct).acknowledge(
            Acknowledgment(id=f"{PLUGIN}::{finding.rule}", reason=finding.reason)
        )


def _block_secret_findings(stack: StratoflowStack) -> list[Finding]:
    """IAM5 on each worker principal's block-secret scopes (`_grant_block_secrets`)."""
    prefix = stack.options.names.queue_prefix
    lambda_role = stack.functions.lambda_worker.role
    principals: dict[str, IConstruct] = {
        "lambda worker": lambda_role,  # type: ignore[dict-item]
        "ecs task": stack.ecs.task_role,
        **{pool: access.policy for pool, access in stack.on_prem.items()},
    }
    found = []
    for principal, scopes in stack.block_secret_scopes().items():
        for scope in scopes:
            arn = block_secrets_arn(
                prefix, scope, "<AWS::Partition>", "<AWS::Region>", "<AWS::AccountId>"
            )
            found.append(
                Finding(principals[principal], f"AwsSolutions-IAM5[Resource::{arn}]", BLOCK_SECRETS)
            )
    return found


def _task_worker_findings(stack: StratoflowStack, results: str) -> list[Finding]:
    """The Lambda task worker (when `task_modules` is set): its runtime and its two
    results prefixes (infra.constructs.task_worker)."""
    worker = stack.task_worker
    if worker is None:
        return []
    return [
        Finding(worker.function, "AwsSolutions-L1", LAMBDA_RUNTIME),
        *(
            Finding(worker.role, f"AwsSolutions-IAM5[Resource::{results}/{prefix}*]", TASK_RESULTS)
            for prefix in TASK_RESULT_PREFIXES
        ),
    ]


def _web_ui_findings(stack: StratoflowStack) -> list[Finding]:
    """The web UI (unless `-c ui=false`): its function's runtime, the distribution and the
    user pool (infra.constructs.web_ui)."""
    ui = stack.web_ui
    if ui is None:
        return []
    found = [
        Finding(ui.function, "AwsSolutions-L1", LAMBDA_RUNTIME),
        Finding(ui.distribution, "AwsSolutions-CFR1", UI_GEO_RESTRICTION),
        Finding(ui.distribution, "AwsSolutions-CFR4", UI_DEFAULT_CERTIFICATE),
        Finding(ui.user_pool, "AwsSolutions-COG2", UI_MFA_OPTIONAL),
        Finding(ui.user_pool, "AwsSolutions-COG8", UI_FEATURE_PLAN),
    ]
    if stack.options.ui_web_acl_arn is None:
        found.append(Finding(ui.distribution, "AwsSolutions-CFR2", UI_WAF))
    return found
