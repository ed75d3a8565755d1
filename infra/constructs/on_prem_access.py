"""What an on-prem worker (`strato worker start`, outbound HTTPS only) may do, as a
managed policy, and a role for it when `on_prem_principal_arn` names who assumes it (with
`on_prem_external_id`, only with that `sts:ExternalId`; sessions of `on_prem_session_hours`).

The policy allows: receive, delete and change the visibility of the messages of its
queues (the queues of pools of type "process"); send to work queues (a run not due yet
goes back with a delay, a flow may `run_deployment`) and to its queues' DLQs (a malformed
message is dead-lettered with its reason); read the table and write only run items
(conditional writes on runs, task runs, cache, concurrency slots, its heartbeat,
events); read code bundles; read and write results; write run logs. Nothing else: no
Scan, no deployment or automation writes, no other bucket prefix, no other log group.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import permissions
from infra.constructs.state_table import StateTable
from infra.constructs.work_queues import WorkQueue


class OnPremAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy_name: str,
        table: StateTable,
        code_bucket: s3.IBucket,
        results_bucket: s3.IBucket,
        runs_log_group: logs.ILogGroup,
        work_queues: Sequence[WorkQueue],
        principal_arn: str | None,
        external_id: str | None = None,
        session_hours: int = 1,
    ) -> None:
        super().__init__(scope, construct_id)
        own = [q for q in work_queues if q.pool.type == "process"]
        statements = permissions.run_execution(
            table=table,
            code_bucket=code_bucket,
            results_bucket=results_bucket,
            runs_log_group=runs_log_group,
            send_to=[*(q.queue for q in work_queues), *(q.dead_letter_queue for q in own)],
        )
        if own:
            statements.append(permissions.queue_consume(q.queue for q in own))
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=policy_name,
            description="stratoflow on-prem worker: its queues, run items, code, results, logs",
            statements=statements,
        )
        self.role: iam.Role | None = None
        if principal_arn is not None:
            trusted = iam.ArnPrincipal(principal_arn)
            principal: iam.IPrincipal = trusted
            if external_id is not None:
                # Against the confused deputy: a principal acting for several parties (a
                # vendor's scheduler) must say for which one it assumes this role.
                principal = trusted.with_conditions(
                    {"StringEquals": {"sts:ExternalId": external_id}}
                )
            self.role = iam.Role(
                self,
                "Role",
                assumed_by=principal,
                description="Assumed by stratoflow on-prem workers",
                managed_policies=[self.policy],
                # Short sessions bound how long leaked credentials work; boto3's
                # credential provider of an assumed role renews them by itself.
                max_session_duration=Duration.hours(session_hours),
            )
