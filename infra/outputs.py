"""The stack's outputs.

The outputs that configure the CLI and workers, and the environment variable each one
sets, are `stratoflow.resources.STACK_OUTPUTS` (the CLI's `strato config from-stack`
reads the same mapping). The others are informational, among them one on-prem worker
policy (and role) per process pool, named by `on_prem_policy_output` / `on_prem_role_output`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stratoflow.resources import OPTIONAL_STACK_OUTPUTS, STACK_OUTPUTS, UI_URL_OUTPUT

SETTINGS_OUTPUTS = STACK_OUTPUTS
"""Output name → `STRATOFLOW_*` variable it sets."""
OPTIONAL_OUTPUTS = OPTIONAL_STACK_OUTPUTS
"""Outputs of some stacks only → the variable `strato config from-stack` exports."""
UI_URL = UI_URL_OUTPUT
"""The web UI's CloudFront URL (unless `-c ui=false`)."""

NOTIFICATIONS_TOPIC_ARN = "NotificationsTopicArn"
DASHBOARD_NAME = "DashboardName"
ECS_CLUSTER_ARN = "EcsClusterArn"
AUTOMATIONS_FAILURE_QUEUE_URL = "AutomationsFailureQueueUrl"

INFO_OUTPUTS = (
    NOTIFICATIONS_TOPIC_ARN,
    DASHBOARD_NAME,
    ECS_CLUSTER_ARN,
    AUTOMATIONS_FAILURE_QUEUE_URL,
)
"""The informational outputs every stack has (the per-pool ones come on top)."""

ON_PREM_POLICY_OUTPUT = "OnPremWorkerPolicyArn"
ON_PREM_ROLE_OUTPUT = "OnPremWorkerRoleArn"
"""Prefixes of the per-pool outputs; the role's only when `on_prem_principal_arn` is set."""


def pascal_case(pool: str) -> str:
    """`etl-nightly` / `etl_nightly` / `etl.nightly` → `EtlNightly`: CloudFormation output
    ids are alphanumeric only. Different pools may give the same id (`etl-a`, `etl_a`,
    `EtlA`); `colliding_pools` finds them so synthesis stops instead of CDK refusing a
    duplicate construct id with a less helpful message."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_.]", pool) if part)


def on_prem_policy_output(pool: str) -> str:
    return f"{ON_PREM_POLICY_OUTPUT}{pascal_case(pool)}"


def on_prem_role_output(pool: str) -> str:
    return f"{ON_PREM_ROLE_OUTPUT}{pascal_case(pool)}"


def colliding_pools(pools: Iterable[str]) -> list[list[str]]:
    """Groups of pool names whose outputs would have the same id."""
    by_id: dict[str, list[str]] = {}
    for pool in pools:
        by_id.setdefault(pascal_case(pool), []).append(pool)
    return [names for names in by_id.values() if len(names) > 1]
