"""The keys that sign pickled results (`stratoflow.result_signing`): one Secrets Manager
secret per work pool, and one for operators' own runs, each a 64-character random value.

Each worker principal is granted GetSecretValue on the keys of the pools it runs and no
other: a flow can sign only as its own pool, so a pickle it plants where another pool or
an operator reads does not verify there (docs/security.md, finding 1). Operators (the
deployers' credentials) read every key. The `_tasks` key signs background task runs'
pickled parameters and results: the Lambda task worker reads it, no other principal of
the stack does (docs/background-tasks.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stratoflow.resources import (
    OPERATORS_SIGNING_DOMAIN,
    TASKS_SIGNING_DOMAIN,
    result_key_secret_name,
)

KEY_CHARACTERS = 64
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.secrets: dict[str, secretsmanager.Secret] = {}
        for domain in (OPERATORS_SIGNING_DOMAIN, TASKS_SIGNING_DOMAIN, *pools):
            secret = secretsmanager.Secret(
                self,
                # The pool's own name (construct ids may hold `-_.`; CDK makes the logical
                # id unique): renaming none, reordering pools replaces no key.
                _SPECIAL.get(domain, f"Pool-{domain}"),
                secret_name=result_key_secret_name(prefix, domain),
                description=f"stratoflow: signs the pickled results of {domain}",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=KEY_CHARACTERS, exclude_punctuation=True
                ),
                # Results signed with a deleted key can no longer be loaded.
                removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            )
            self.secrets[domain] = secret

    def read_statement(self, pools: Iterable[str], *, sid: str) -> iam.PolicyStatement | None:
        """GetSecretValue on the keys of `pools` only (None when there are none)."""
        arns = [self.secrets[pool].secret_arn for pool in pools]
        if not arns:
            return None
        return iam.PolicyStatement(
            sid=sid, actions=["secretsmanager:GetSecretValue"], resources=arns
        )
