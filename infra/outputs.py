"""The stack's outputs.

The outputs that configure the CLI and workers, and the environment variable each one
sets, are `stratoflow.resources.STACK_OUTPUTS` (the CLI's `strato config from-stack`
reads the same mapping). The others are informational.
"""

from __future__ import annotations

from stratoflow.resources import STACK_OUTPUTS

SETTINGS_OUTPUTS = STACK_OUTPUTS
"""Output name → `STRATOFLOW_*` variable it sets."""

NOTIFICATIONS_TOPIC_ARN = "NotificationsTopicArn"
ON_PREM_WORKER_POLICY_ARN = "OnPremWorkerPolicyArn"
ON_PREM_WORKER_ROLE_ARN = "OnPremWorkerRoleArn"
"""Only when `on_prem_principal_arn` is set."""
DASHBOARD_NAME = "DashboardName"
ECS_CLUSTER_ARN = "EcsClusterArn"
AUTOMATIONS_FAILURE_QUEUE_URL = "AutomationsFailureQueueUrl"

INFO_OUTPUTS = (
    NOTIFICATIONS_TOPIC_ARN,
    ON_PREM_WORKER_POLICY_ARN,
    ON_PREM_WORKER_ROLE_ARN,
    DASHBOARD_NAME,
    ECS_CLUSTER_ARN,
    AUTOMATIONS_FAILURE_QUEUE_URL,
)
