"""The keys that sign pickled results (`stratoflow.result_signing`): one SSM Parameter
Store SecureString parameter (standard tier: no charge) per work pool, one for
operators' own runs and one for background tasks, each 32 random bytes in base64.

CloudFormation cannot create a SecureString parameter, and a key must never appear in a
template, so each key is a custom resource: a `custom_resources.Provider` whose
`onEvent` handler is a small Lambda of ours (`functions/result_keys/handler.py`, the
shared code asset) that creates the parameter (or copies the Secrets Manager secret an
earlier version kept the key in), leaves it alone on update and deletes it on delete.
With `retain_data` the resources are retained (CloudFormation sends no Delete): results
signed with a deleted key can no longer be loaded. The handler's role may put and delete
exactly these parameters; the provider framework's role may only invoke the handler and
write its own log group. Neither runs at idle: the resources call them when the stack
is deployed.

Each worker principal is granted `ssm:GetParameter` on the keys of the pools it runs and
no other: a flow can sign only as its own pool, so a pickle it plants where another pool
or an operator reads does not verify there (docs/security.md, finding 1). Operators (the
deployers' credentials) read every key. The `_tasks` key signs background task runs'
pickled parameters and results: the Lambda task worker reads it, no other principal of
the stack does (docs/background-tasks.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import permissions
from infra.constructs.functions import ARCHITECTURE, RUNTIME, Shared, handler
from infra.constructs.observability import retention
from stratoflow.resources import OPERATORS_SIGNING_DOMAIN, TASKS_SIGNING_DOMAIN

RESOURCE_TYPE = "Custom::StratoflowResultKey"
HANDLER_TIMEOUT = Duration.seconds(60)
_SPECIAL = {OPERATORS_SIGNING_DOMAIN: "Operators", TASKS_SIGNING_DOMAIN: "Tasks"}
"""Construct ids of the keys that are no pool's (background tasks: `_tasks`)."""


class ResultKeys(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        pools: Sequence[str],
        retain: bool,
        shared: Shared,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix = prefix
        self.domains = (OPERATORS_SIGNING_DOMAIN, TASKS_SIGNING_DOMAIN, *pools)
        name = f"{shared.prefix}-result-keys"
        self.handler_log_group = self._log_group("HandlerLogs", f"/aws/lambda/{name}", shared)
        self.handler_role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="stratoflow result-keys custom resource Lambda",
        )
        for statement in (
            permissions.logs_write(self.handler_log_group, sid="WriteOwnLogs"),
            *permissions.result_keys_manage(prefix, self.domains),
        ):
            self.handler_role.add_to_policy(statement)
        self.handler = lambda_.Function(
            self,
            "Handler",
            function_name=name,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=shared.code,
            handler=handler("result_keys", "on_event"),
            timeout=HANDLER_TIMEOUT,
            memory_size=256,
            role=self.handler_role,
            log_group=self.handler_log_group,
            environment={
                **shared.environment,
                "POWERTOOLS_SERVICE_NAME": "stratoflow-result-keys",
                "POWERTOOLS_LOG_LEVEL": shared.log_level,
                "POWERTOOLS_METRICS_NAMESPACE": shared.metrics_namespace,
            },
        )
        # The framework's own role (else CDK gives it AWSLambdaBasicExecutionRole, a
        # managed policy on every log group): its log group; the Provider adds the
        # invoke of the handler.
        provider_name = f"{shared.prefix}-result-keys-provider"
        self.provider_log_group = self._log_group(
            "ProviderLogs", f"/aws/lambda/{provider_name}", shared
        )
        self.provider_role = iam.Role(
            self,
            "ProviderRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="stratoflow result-keys custom resource provider framework",
        )
        self.provider_role.add_to_policy(
            permissions.logs_write(self.provider_log_group, sid="WriteOwnLogs")
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handler,
            provider_function_name=provider_name,
            log_group=self.provider_log_group,
            framework_on_event_role=self.provider_role,
        )
        self.keys: dict[str, CustomResource] = {
            domain: CustomResource(
                self,
                # The pool's own name (construct ids may hold `-_.`; CDK makes the logical
                # id unique): renaming none, reordering pools replaces no key.
                _SPECIAL.get(domain, f"Pool-{domain}"),
                service_token=self.provider.service_token,
                resource_type=RESOURCE_TYPE,
                properties={"QueuePrefix": prefix, "Domain": domain},
                removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            )
            for domain in self.domains
        }

    def _log_group(self, construct_id: str, name: str, shared: Shared) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=name,
            retention=retention(shared.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )

    @property
    def framework_function(self) -> lambda_.Function:
        """The provider framework's `onEvent` function (CDK's code, Node.js)."""
        found = self.provider.node.find_child("framework-onEvent")
        assert isinstance(found, lambda_.Function)
        return found

    def read_statement(self, pools: Iterable[str], *, sid: str) -> iam.PolicyStatement | None:
        """`ssm:GetParameter` on the keys of `pools` only (None when there are none)."""
        domains = list(pools)
        unknown = set(domains) - set(self.domains)
        if unknown:
            raise KeyError(f"No result-signing key for {sorted(unknown)}")
        return permissions.result_keys_read(self.prefix, domains, sid=sid)
