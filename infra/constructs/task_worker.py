"""Background tasks (docs/background-tasks.md): the installation's task queue with its
DLQ, and the Lambda task worker that is its SQS event source.

- `TaskQueue`: `<queue prefix>-tasks` and `<queue prefix>-tasks-dlq` (names, retention
  and max receive count from `stratoflow.resources`, as work queues).
- `LambdaTaskWorker`: `functions/task_worker/handler.py`, serving the tasks of the
  modules `-c task_modules=...` names (they are part of the Lambda code bundle). Its role
  is its own and least privilege: read the table; write only `TASKRUN#` items (its runs
  and their parameters) and `CACHE#` entries (task caching; entries are signed); read and
  write results only under `results/task-runs/` and `results/cache/`; read no code bundle
  (its code is in its own package); consume the task queue, send to it (a run waiting for
  its `wait_for` runs comes back) and to its DLQ (refusals, with the reason); read the
  `_tasks` signing key only; write the runs log group and its own log group.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import permissions
from infra.constructs.functions import ARCHITECTURE, RUNTIME, Shared, handler
from infra.constructs.observability import retention
from infra.constructs.state_table import StateTable
from infra.constructs.work_queues import RETENTION
from stratoflow import resources
from stratoflow.backends.aws.result_refs import TASK_RUNS_OUTSIDE_FLOWS
from stratoflow.results import CACHE_RESULTS
from stratoflow.settings import env_var

TASK_RESULT_PREFIXES = (
    f"{resources.RESULTS_PREFIX}{TASK_RUNS_OUTSIDE_FLOWS}",
    f"{resources.RESULTS_PREFIX}{CACHE_RESULTS}",
)
TASK_WORKER_PARTITIONS = (
    resources.task_run_key(None, "*")[resources.PARTITION_KEY],
    resources.cache_key("*")[resources.PARTITION_KEY],
)
"""`TASKRUN#*` (background runs and their parameters) and `CACHE#*`: nothing else."""


class TaskQueue(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        visibility_seconds: int,
        taken: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        name = resources.task_queue_name(prefix)
        dlq_name = resources.dead_letter_queue_of(name)
        clash = {name, dlq_name} & set(taken)
        if clash:
            raise ValueError(
                f"The work queue {sorted(clash)[0]!r} has the name of the task queue or its "
                "DLQ: rename its work pool or work queue."
            )
        self.dead_letter_queue = sqs.Queue(
            self,
            "Dlq",
            queue_name=dlq_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(visibility_seconds),
            retention_period=RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=resources.MAX_RECEIVE_COUNT
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )


class LambdaTaskWorker(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: Shared,
        task_modules: Sequence[str],
        task_queue: TaskQueue,
        table: StateTable,
        results_bucket: s3.IBucket,
        runs_log_group: logs.ILogGroup,
        signing_key_read: iam.PolicyStatement,
        memory_mb: int,
        timeout_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        name = f"{shared.prefix}-task-worker"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{name}",
            retention=retention(shared.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="stratoflow task-worker Lambda",
        )
        for statement in (
            permissions.logs_write(self.log_group, sid="WriteOwnLogs"),
            permissions.table_read(table),
            permissions.table_write(table, partitions=TASK_WORKER_PARTITIONS),
            *task_results_read_write(results_bucket),
            permissions.logs_write(runs_log_group),
            permissions.queue_send(
                [task_queue.queue, task_queue.dead_letter_queue], sid="SendToTheTaskQueue"
            ),
            signing_key_read,
        ):
            self.role.add_to_policy(statement)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=name,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=shared.code,
            handler=handler("task_worker"),
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            role=self.role,
            log_group=self.log_group,
            environment={
                **shared.environment,
                env_var("task_modules"): ",".join(task_modules),
                "POWERTOOLS_SERVICE_NAME": "stratoflow-task-worker",
                "POWERTOOLS_LOG_LEVEL": shared.log_level,
                "POWERTOOLS_METRICS_NAMESPACE": shared.metrics_namespace,
            },
        )
        self.function.add_event_source(
            sources.SqsEventSource(task_queue.queue, batch_size=1, report_batch_item_failures=True)
        )


def task_results_read_write(bucket: s3.IBucket) -> list[iam.PolicyStatement]:
    """Results of background task runs and cache entries only (not flow runs')."""
    return [
        iam.PolicyStatement(
            sid="ReadWriteTaskResults",
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in TASK_RESULT_PREFIXES],
        ),
        iam.PolicyStatement(
            sid="ListTaskResults",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in TASK_RESULT_PREFIXES]}},
        ),
    ]
