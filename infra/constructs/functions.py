"""The Lambda functions (Python 3.12, one shared code asset, one role and one log group
each) and what triggers them:

- scheduler (`functions/scheduler/handler.py` `handler`): EventBridge, every minute;
- automations (`functions/automations/handler.py` `handler`): the state table's stream,
  bisect on error, partial batch failures, bounded retries, then an SQS failure queue;
- Lambda worker (`functions/lambda_worker/handler.py` `handler`): the queues of pools of
  type "lambda", partial batch failures;
- ECS dispatcher (`functions/ecs_dispatcher/handler.py` `handler`): the queues of pools
  of type "ecs"; and `on_task_stopped`, for the cluster's "ECS Task State Change"
  events with lastStatus STOPPED.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import permissions
from infra.constructs.ecs_runner import EcsRunner
from infra.constructs.observability import retention
from infra.constructs.state_table import StateTable
from infra.constructs.work_queues import WorkQueue
from stratoflow.settings import env_var

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64  # the bundle's wheels are manylinux x86_64
LAMBDA_HOME = "/tmp/stratoflow"
"""STRATOFLOW_HOME in Lambda: the code bundle cache and local results."""

SCHEDULER_TIMEOUT = Duration.seconds(60)
AUTOMATIONS_TIMEOUT = Duration.seconds(60)
DISPATCHER_TIMEOUT_SECONDS = 60
AUTOMATIONS_RETRY_ATTEMPTS = 3
AUTOMATIONS_MAX_RECORD_AGE = Duration.hours(6)
AUTOMATIONS_BATCH_SIZE = 100
DISPATCHER_BATCH_SIZE = 10
FAILURE_QUEUE_RETENTION = Duration.days(14)

ECS_ENV = {
    "cluster": "STRATOFLOW_ECS_CLUSTER",
    "task_definition": "STRATOFLOW_ECS_TASK_DEFINITION",
    "subnets": "STRATOFLOW_ECS_SUBNETS",
    "security_groups": "STRATOFLOW_ECS_SECURITY_GROUPS",
    "container": "STRATOFLOW_ECS_CONTAINER",
    "assign_public_ip": "STRATOFLOW_ECS_ASSIGN_PUBLIC_IP",
}
"""The dispatcher's variables, read by `stratoflow.workers.ecs.EcsConfig.from_env` (not
`Settings` fields; a test feeds them to `EcsConfig.from_env`)."""


def handler(function: str, name: str = "handler") -> str:
    return f"functions.{function}.handler.{name}"


def queue_visibility_seconds(function_timeout_seconds: int) -> int:
    """AWS's advice for an SQS event source: visibility >= 6 x the function's timeout."""
    return 6 * function_timeout_seconds


@dataclass(frozen=True)
class Shared:
    """What every function is built from."""

    prefix: str
    code: lambda_.Code
    environment: Mapping[str, str]
    log_retention_days: int
    log_level: str
    metrics_namespace: str


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: Shared,
        table: StateTable,
        code_bucket: s3.IBucket,
        results_bucket: s3.IBucket,
        runs_log_group: logs.ILogGroup,
        work_queues: Sequence[WorkQueue],
        topic: sns.ITopic,
        ecs: EcsRunner,
        lambda_worker_memory_mb: int,
        lambda_worker_timeout_seconds: int,
        webhook_allowed_hosts: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.shared = shared
        self.log_groups: dict[str, logs.LogGroup] = {}
        all_queues = [q.queue for q in work_queues]
        lambda_queues = [q for q in work_queues if q.pool.type == "lambda"]
        ecs_queues = [q for q in work_queues if q.pool.type == "ecs"]

        # Scheduler: due slots → runs → their queues; sweeps.
        self.scheduler = self._function(
            "Scheduler",
            "scheduler",
            handler("scheduler"),
            timeout=SCHEDULER_TIMEOUT,
            memory_mb=512,
            statements=[
                permissions.table_read(table),
                permissions.table_write(table),
                permissions.queue_send(all_queues),
            ],
        )
        self.schedule = events.Rule(
            self,
            "EveryMinute",
            description="stratoflow scheduler tick",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[
                targets.LambdaFunction(
                    self.scheduler, retry_attempts=1, max_event_age=Duration.minutes(2)
                )
            ],
        )

        # Automations: the table's stream → triggers → actions.
        self.automations_failures = sqs.Queue(
            self,
            "AutomationsFailures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=FAILURE_QUEUE_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.automations = self._function(
            "Automations",
            "automations",
            handler("automations"),
            timeout=AUTOMATIONS_TIMEOUT,
            memory_mb=512,
            environment={
                env_var("webhook_allowed_hosts"): webhook_allowed_hosts,
            },
            statements=[
                permissions.table_read(table),
                permissions.table_write(table),
                permissions.queue_send(all_queues),
                # Notification actions name their topic; this stack's topic is the one
                # they may publish to (add a statement for others).
                iam.PolicyStatement(
                    sid="PublishNotifications", actions=["sns:Publish"], resources=[topic.topic_arn]
                ),
                # Webhook secrets of automations: this role only (docs/security.md).
                permissions.automation_secrets_read(shared.environment[env_var("queue_prefix")]),
            ],
        )
        self.automations.add_event_source(
            sources.DynamoEventSource(
                table.table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=AUTOMATIONS_BATCH_SIZE,
                bisect_batch_on_error=True,
                report_batch_item_failures=True,
                retry_attempts=AUTOMATIONS_RETRY_ATTEMPTS,
                max_record_age=AUTOMATIONS_MAX_RECORD_AGE,
                on_failure=sources.SqsDlq(self.automations_failures),
            )
        )

        # Lambda worker: runs each flow run of "lambda" pools in the invocation.
        self.lambda_worker = self._function(
            "LambdaWorker",
            "lambda-worker",
            handler("lambda_worker"),
            timeout=Duration.seconds(lambda_worker_timeout_seconds),
            memory_mb=lambda_worker_memory_mb,
            statements=permissions.run_execution(
                table=table,
                code_bucket=code_bucket,
                results_bucket=results_bucket,
                runs_log_group=runs_log_group,
                send_to=[*all_queues, *(q.dead_letter_queue for q in lambda_queues)],
            ),
        )
        for queue in lambda_queues:
            self.lambda_worker.add_event_source(
                sources.SqsEventSource(
                    queue.queue,
                    batch_size=1,
                    report_batch_item_failures=True,
                    max_concurrency=_max_concurrency(queue.pool.concurrency_limit),
                )
            )

        # ECS dispatcher: claims each run of "ecs" pools and starts its Fargate task.
        ecs_environment = {
            ECS_ENV["cluster"]: ecs.cluster_arn,
            ECS_ENV["task_definition"]: ecs.task_definition.task_definition_arn,
            ECS_ENV["subnets"]: ",".join(ecs.subnet_ids),
            ECS_ENV["security_groups"]: ",".join(ecs.security_group_ids),
            ECS_ENV["container"]: ecs.container.container_name,
            ECS_ENV["assign_public_ip"]: "ENABLED" if ecs.assign_public_ip else "DISABLED",
        }
        ecs_sends = [
            *(q.queue for q in ecs_queues),
            *(q.dead_letter_queue for q in ecs_queues),
        ]
        self.ecs_dispatcher = self._function(
            "EcsDispatcher",
            "ecs-dispatcher",
            handler("ecs_dispatcher"),
            timeout=Duration.seconds(DISPATCHER_TIMEOUT_SECONDS),
            memory_mb=256,
            environment=ecs_environment,
            statements=[
                permissions.table_read(table),
                permissions.table_write(table, partitions=permissions.RUN_PARTITIONS),
                *ecs.dispatcher_statements(),
                *([permissions.queue_send(ecs_sends)] if ecs_sends else []),
            ],
        )
        for queue in ecs_queues:
            self.ecs_dispatcher.add_event_source(
                sources.SqsEventSource(
                    queue.queue,
                    batch_size=DISPATCHER_BATCH_SIZE,
                    report_batch_item_failures=True,
                )
            )
        self.ecs_task_stopped = self._function(
            "EcsTaskStopped",
            "ecs-task-stopped",
            handler("ecs_dispatcher", "on_task_stopped"),
            timeout=Duration.seconds(DISPATCHER_TIMEOUT_SECONDS),
            memory_mb=256,
            statements=[
                permissions.table_read(table),
                permissions.table_write(table, partitions=permissions.RUN_PARTITIONS),
                *([permissions.queue_send(q.queue for q in ecs_queues)] if ecs_queues else []),
            ],
        )
        self.task_stopped_rule = events.Rule(
            self,
            "EcsTaskStoppedRule",
            description="stratoflow: a flow-run task of the cluster stopped",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={"clusterArn": [ecs.cluster_arn], "lastStatus": ["STOPPED"]},
            ),
            targets=[targets.LambdaFunction(self.ecs_task_stopped, retry_attempts=4)],
        )

    @property
    def all(self) -> list[lambda_.Function]:
        return [
            self.scheduler,
            self.automations,
            self.lambda_worker,
            self.ecs_dispatcher,
            self.ecs_task_stopped,
        ]

    def _function(
        self,
        construct_id: str,
        short_name: str,
        handler_path: str,
        *,
        timeout: Duration,
        memory_mb: int,
        statements: Sequence[iam.PolicyStatement],
        environment: Mapping[str, str] | None = None,
    ) -> lambda_.Function:
        shared = self.shared
        name = f"{shared.prefix}-{short_name}"
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            log_group_name=f"/aws/lambda/{name}",
            retention=retention(shared.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.log_groups[construct_id] = log_group
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"stratoflow {short_name} Lambda",
        )
        # Its own log group only (instead of the AWSLambdaBasicExecutionRole managed policy).
        role.add_to_policy(permissions.logs_write(log_group, sid="WriteOwnLogs"))
        for statement in statements:
            role.add_to_policy(statement)
        return lambda_.Function(
            self,
            construct_id,
            function_name=name,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=shared.code,
            handler=handler_path,
            timeout=timeout,
            memory_size=memory_mb,
            role=role,
            log_group=log_group,
            environment={
                **shared.environment,
                "POWERTOOLS_SERVICE_NAME": f"stratoflow-{short_name}",
                "POWERTOOLS_LOG_LEVEL": shared.log_level,
                "POWERTOOLS_METRICS_NAMESPACE": shared.metrics_namespace,
                **(environment or {}),
            },
        )


def _max_concurrency(limit: int | None) -> int | None:
    """An SQS event source's concurrency cap (2 to 1000) from the pool's limit."""
    if limit is None:
        return None
    return min(max(limit, 2), 1000)
