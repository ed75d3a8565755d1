"""What the on-prem workers (`strato worker start`, outbound HTTPS only) of one process
pool may do, as a managed policy, and a role for them when `on_prem_principal_arn` names
who assumes it (with `on_prem_external_id`, only with that `sts:ExternalId`; sessions of
`on_prem_session_hours`). The stack creates one per process pool, so a host of pool A
holds no SQS permission on pool B's queues (docs/security.md, finding 3).

The policy allows: receive, delete and change the visibility of the messages of its own
pool's queues; send to its own pool's queues (a run not due yet goes back with a delay, a
retry is re-enqueued, a flow may `run_deployment` a deployment of its own pool), to the
queues of the pools `on_prem_may_start_runs_in` lists for it (`run_deployment` of their
deployments), and to its own queues' DLQs (a malformed message is dead-lettered with its
reason); read the table and write only its pool's run items (ids carrying the pool's tag,
`stratoflow.run_ids`, and those of the pools it may start runs in: runs, their task runs
and subflows), its heartbeats, and the shared task cache, concurrency slots and events;
read code bundles; read and write results; read its pool's result-signing key (added by
the stack); write run logs. Nothing else: no Scan, no deployment or automation writes,
no other pool's runs, no other bucket prefix, no other log group.
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
        pool: str,
        policy_name: str,
        table: StateTable,
        code_bucket: s3.IBucket,
        results_bucket: s3.IBucket,
        runs_log_group: logs.ILogGroup,
        work_queues: Sequence[WorkQueue],
        may_start_runs_in: Sequence[str] = (),
        principal_arn: str | None,
        external_id: str | None = None,
        session_hours: int = 1,
    ) -> None:
        super().__init__(scope, construct_id)
        self.pool = pool
        own = [q for q in work_queues if q.pool.name == pool]
        if not own or any(q.pool.type != "process" for q in own):
            raise ValueError(f"{pool!r} is not a process pool with queues")
        # Sending to another pool's queues is opt-in: a compromised host could otherwise
        # flood them (each message costs their workers a receive, and a Lambda or ECS
        # pool an invocation) or hand them a run it forged right away.
        others = [
            q for q in work_queues if q.pool.name in may_start_runs_in and q.pool.name != pool
        ]
        statements = permissions.run_execution(
            table=table,
            code_bucket=code_bucket,
            results_bucket=results_bucket,
            runs_log_group=runs_log_group,
            send_to=[
                *(q.queue for q in own),
                *(q.queue for q in others),
                *(q.dead_letter_queue for q in own),
            ],
            # Its own pool's runs (and those it may start), not every pool's.
            run_partitions=permissions.pool_run_partitions(
                pool, sorted({q.pool.name for q in others})
            ),
        )
        statements.append(permissions.queue_consume(q.queue for q in own))
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=policy_name,
            description=f"stratoflow on-prem worker of pool {pool}: its queues, run items, "
            "code, results, logs",
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
                description=f"Assumed by the stratoflow on-prem workers of pool {pool}",
                managed_policies=[self.policy],
                # Short sessions bound how long leaked credentials work; boto3's
                # credential provider of an assumed role renews them by itself.
                max_session_duration=Duration.hours(session_hours),
            )
