"""The stratoflow stack: everything one installation (`stage`) needs, built from the
shared resource model (`stratoflow.resources`) and the app's options (`infra.context`)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack, Tags
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from infra import nag, outputs, permissions
from infra.constructs.buckets import Buckets
from infra.constructs.ecs_runner import EcsRunner
from infra.constructs.functions import (
    DISPATCHER_TIMEOUT_SECONDS,
    LAMBDA_HOME,
    Functions,
    Shared,
    queue_visibility_seconds,
)
from infra.constructs.lambda_code import lambda_code
from infra.constructs.observability import Monitoring, Notifications, QueueMetrics, RunLogs
from infra.constructs.on_prem_access import OnPremAccess
from infra.constructs.result_keys import ResultKeys
from infra.constructs.state_table import StateTable
from infra.constructs.task_worker import LambdaTaskWorker, TaskQueue
from infra.constructs.web_ui import WebUi
from infra.constructs.work_queues import WorkQueues
from infra.context import StackOptions
from stratoflow import resources
from stratoflow.settings import env_var
from stratoflow.workers.poller import PollerOptions


def visibility_seconds(options: StackOptions) -> dict[str, int]:
    """Visibility timeout of a work queue, by the type of its pool: from the timeout of
    the worker that consumes it."""
    return {
        # The poller sets it on each receive and extends it while the run runs.
        "process": PollerOptions(pool="-").visibility_timeout,
        "lambda": queue_visibility_seconds(options.lambda_worker_timeout_seconds),
        "ecs": queue_visibility_seconds(DISPATCHER_TIMEOUT_SECONDS),
    }


class StratoflowStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: StackOptions,
        code: lambda_.Code | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"stratoflow ({options.stage}): serverless workflow orchestration",
            **kwargs,
        )
        self.options = options
        Tags.of(self).add("stratoflow:stage", options.stage)
        names = options.names
        namespace = f"Stratoflow/{options.stage}"
        prefix = f"stratoflow-{options.stage}"

        self.state = StateTable(self, "State", spec=names.table_spec, retain=options.retain_data)
        self.buckets = Buckets(
            self,
            "Buckets",
            code_bucket_name=options.code_bucket_name,
            results_bucket_name=options.results_bucket_name,
            results_expiration_days=options.results_expiration_days,
            code_noncurrent_version_days=options.code_noncurrent_version_days,
            retain=options.retain_data,
        )
        self.run_logs = RunLogs(
            self,
            "RunLogs",
            name=names.runs_log_group,
            retention_days=options.log_retention_days,
            namespace=namespace,
            retain=options.retain_data,
        )
        self.work_queues = WorkQueues(
            self,
            "WorkQueues",
            prefix=names.queue_prefix,
            pools=options.work_pools,
            visibility_seconds=visibility_seconds(options),
        )
        self.notifications = Notifications(
            self, "Notifications", stage=options.stage, email=options.alarm_email
        )

        environment = {
            env_var("backend"): "aws",
            env_var("region"): Aws.REGION,
            env_var("table_name"): self.state.table.table_name,
            env_var("results_bucket"): self.buckets.results.bucket_name,
            env_var("code_bucket"): self.buckets.code.bucket_name,
            env_var("runs_log_group"): self.run_logs.log_group.log_group_name,
            env_var("queue_prefix"): names.queue_prefix,
        }
        self.ecs = EcsRunner(
            self,
            "EcsRunner",
            family=f"{prefix}-flow-run",
            image=options.ecs_image,
            cpu=options.ecs_cpu,
            memory_mib=options.ecs_memory_mib,
            environment=environment,
            runs_log_group=self.run_logs.log_group,
            subnet_ids=options.ecs_subnet_ids,
            security_group_ids=options.ecs_security_group_ids,
            assign_public_ip=options.ecs_assign_public_ip,
            flow_log_retention_days=options.log_retention_days,
        )
        for statement in permissions.run_execution(
            table=self.state,
            code_bucket=self.buckets.code,
            results_bucket=self.buckets.results,
            runs_log_group=self.run_logs.log_group,
            send_to=self.work_queues.all_queues,
        ):
            self.ecs.task_role.add_to_principal_policy(statement)

        self.functions = Functions(
            self,
            "Functions",
            shared=Shared(
                prefix=prefix,
                code=code or lambda_code(bundle=options.bundle),
                environment={**environment, env_var("home"): LAMBDA_HOME},
                log_retention_days=options.log_retention_days,
                log_level=options.log_level,
                metrics_namespace=namespace,
            ),
            table=self.state,
            code_bucket=self.buckets.code,
            results_bucket=self.buckets.results,
            runs_log_group=self.run_logs.log_group,
            work_queues=self.work_queues.queues,
            topic=self.notifications.topic,
            ecs=self.ecs,
            lambda_worker_memory_mb=options.lambda_worker_memory_mb,
            lambda_worker_timeout_seconds=options.lambda_worker_timeout_seconds,
            webhook_allowed_hosts=options.webhook_allowed_hosts,
        )
        self.result_keys = ResultKeys(
            self,
            "ResultKeys",
            prefix=names.queue_prefix,
            pools=[pool.name for pool in options.work_pools],
            retain=options.retain_data,
            shared=self.functions.shared,
        )
        self._background_tasks(options, shared=self.functions.shared)
        self.web_ui: WebUi | None = None
        if options.ui:
            self.web_ui = WebUi(
                self,
                "WebUi",
                shared=self.functions.shared,
                stage=options.stage,
                queue_prefix=names.queue_prefix,
                table=self.state,
                runs_log_group=self.run_logs.log_group,
                work_queues=self.work_queues.all_queues,
                dead_letter_queues=self.work_queues.dead_letter_queues,
                access_logs=self.buckets.access_logs,
                retain=options.retain_data,
                web_acl_arn=options.ui_web_acl_arn,
            )
        # Each worker principal reads the signing keys of the pools it runs, no other.
        self._grant_result_keys()
        # send-notification actions publish to the encrypted topic.
        automations_role = self.functions.automations.role
        assert automations_role is not None  # _function gives each function its role
        self.notifications.allow_publish(automations_role, sid="AutomationsPublishToTheTopic")
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            dashboard_name=prefix,
            namespace=namespace,
            run_logs=self.run_logs,
            scheduler_log_group=self.functions.log_groups["Scheduler"],
            functions=[
                *self.functions.all,
                *([self.task_worker.function] if self.task_worker is not None else []),
            ],
            work_queues=[
                QueueMetrics(f"{q.pool.name}/{q.name}", q.queue) for q in self.work_queues.queues
            ],
            dead_letter_queues=[
                *(
                    QueueMetrics(f"{q.pool.name}/{q.name} DLQ", q.dead_letter_queue)
                    for q in self.work_queues.queues
                ),
                QueueMetrics("automations failures", self.functions.automations_failures),
                QueueMetrics("background tasks DLQ", self.task_queue.dead_letter_queue),
            ],
            topic=self.notifications.topic,
        )
        # One policy (and role) per process pool: a host of one pool holds no SQS
        # permission on another pool's queues (docs/security.md, finding 3).
        self.on_prem = {
            pool.name: OnPremAccess(
                self,
                f"OnPremWorker{outputs.pascal_case(pool.name)}",
                pool=pool.name,
                policy_name=f"{prefix}-on-prem-{pool.name}",
                table=self.state,
                code_bucket=self.buckets.code,
                results_bucket=self.buckets.results,
                runs_log_group=self.run_logs.log_group,
                work_queues=self.work_queues.queues,
                may_start_runs_in=options.on_prem_may_start_runs_in.get(pool.name, ()),
                principal_arn=options.on_prem_principal_arn,
                external_id=options.on_prem_external_id,
                session_hours=options.on_prem_session_hours,
            )
            for pool in options.pools_of_type("process")
        }
        for pool, access in self.on_prem.items():
            own = self.result_keys.read_statement([pool], sid="ReadOwnPoolResultKey")
            assert own is not None
            access.policy.add_statements(own)
        # Each worker principal loads the blocks every pool may read and its own pools'.
        self._grant_block_secrets(names.queue_prefix)
        self._order_after_result_keys()
        self._outputs(names.queue_prefix)
        nag.suppress(self)

    def _background_tasks(self, options: StackOptions, *, shared: Shared) -> None:
        """The task queue (always: `.delay()` and `strato task-worker start` use it) and,
        with `-c task_modules=...`, the Lambda task worker (docs/background-tasks.md)."""
        self.task_queue = TaskQueue(
            self,
            "TaskQueue",
            prefix=options.names.queue_prefix,
            visibility_seconds=queue_visibility_seconds(options.task_worker_timeout_seconds),
            taken=[
                name
                for q in self.work_queues.queues
                for name in (
                    resources.work_queue_name(options.names.queue_prefix, q.pool.name, q.name),
                    resources.dead_letter_queue_name(
                        options.names.queue_prefix, q.pool.name, q.name
                    ),
                )
            ],
        )
        # The crash sweep of the scheduler tick sends a crashed background run back to the
        # task queue for its retry (stratoflow.background.sweep); not to its DLQ.
        scheduler_role = self.functions.scheduler.role
        assert scheduler_role is not None
        scheduler_role.add_to_principal_policy(
            permissions.queue_send([self.task_queue.queue], sid="SendTaskRunRetries")
        )
        self.task_worker: LambdaTaskWorker | None = None
        if not options.task_modules:
            return
        signing = self.result_keys.read_statement(
            [resources.TASKS_SIGNING_DOMAIN], sid="ReadTasksResultKey"
        )
        assert signing is not None
        self.task_worker = LambdaTaskWorker(
            self,
            "LambdaTaskWorker",
            shared=shared,
            task_modules=options.task_modules,
            task_queue=self.task_queue,
            table=self.state,
            results_bucket=self.buckets.results,
            runs_log_group=self.run_logs.log_group,
            signing_key_read=signing,
            memory_mb=options.task_worker_memory_mb,
            timeout_seconds=options.task_worker_timeout_seconds,
        )

    def _grant_result_keys(self) -> None:
        pools = self.options.pools_of_type
        lambda_role = self.functions.lambda_worker.role
        assert lambda_role is not None
        for role, kind in ((lambda_role, "lambda"), (self.ecs.task_role, "ecs")):
            statement = self.result_keys.read_statement(
                [pool.name for pool in pools(kind)], sid="ReadOwnPoolsResultKeys"
            )
            if statement is not None:
                role.add_to_principal_policy(statement)

    def _order_after_result_keys(self) -> None:
        """The worker principals' policies (and so the functions that use them) change
        after the keys exist: on an upgrade from the Secrets Manager keys, a policy that
        grants the parameter instead of the secret, and the code that reads it, come
        after the parameter holds the secret's key (docs/security.md)."""
        lambda_role = self.functions.lambda_worker.role
        assert lambda_role is not None
        grantees: list[IConstruct] = [
            lambda_role,
            self.ecs.task_role,
            *(access.policy for access in self.on_prem.values()),
            *([self.task_worker.role] if self.task_worker is not None else []),
        ]
        for grantee in grantees:
            grantee.node.add_dependency(*self.result_keys.keys.values())

    def _grant_block_secrets(self, queue_prefix: str) -> None:
        """GetSecretValue on `<prefix>/blocks/_all/*` and `<prefix>/blocks/<pool>/*` for
        the pools each worker principal runs (docs/blocks.md); no block writes."""
        scopes = self.block_secret_scopes()
        lambda_role = self.functions.lambda_worker.role
        assert lambda_role is not None
        sid = "LoadBlockSecrets"
        lambda_role.add_to_principal_policy(
            permissions.block_secrets_read(queue_prefix, scopes["lambda worker"], sid=sid)
        )
        self.ecs.task_role.add_to_principal_policy(
            permissions.block_secrets_read(queue_prefix, scopes["ecs task"], sid=sid)
        )
        for pool, access in self.on_prem.items():
            access.policy.add_statements(
                permissions.block_secrets_read(queue_prefix, scopes[pool], sid=sid)
            )

    def block_secret_scopes(self) -> dict[str, tuple[str, ...]]:
        """The block-secret scopes of each worker principal: `lambda worker`, `ecs task`
        and each process pool's on-prem policy (by pool name)."""
        every = resources.BLOCK_SECRETS_ALL_POOLS
        pools = self.options.pools_of_type
        return {
            "lambda worker": (every, *(p.name for p in pools("lambda"))),
            "ecs task": (every, *(p.name for p in pools("ecs"))),
            **{pool: (every, pool) for pool in self.on_prem},
        }

    def _outputs(self, queue_prefix: str) -> None:
        values = {
            "TableName": self.state.table.table_name,
            "ResultsBucket": self.buckets.results.bucket_name,
            "CodeBucket": self.buckets.code.bucket_name,
            "RunsLogGroup": self.run_logs.log_group.log_group_name,
            "QueuePrefix": queue_prefix,
            "Region": self.region,
        }
        missing = set(outputs.SETTINGS_OUTPUTS) - set(values)
        if missing:
            raise KeyError(f"The stack has no value for the outputs {sorted(missing)}")
        for name, variable in outputs.SETTINGS_OUTPUTS.items():
            CfnOutput(self, name, value=values[name], description=f"Sets {variable}")
        CfnOutput(
            self,
            outputs.NOTIFICATIONS_TOPIC_ARN,
            value=self.notifications.topic.topic_arn,
            description="SNS topic of automation notifications and alarms",
        )
        for pool, access in self.on_prem.items():
            CfnOutput(
                self,
                outputs.on_prem_policy_output(pool),
                value=access.policy.managed_policy_arn,
                description=f"Managed policy of the on-prem workers of pool {pool}",
            )
            if access.role is not None:
                CfnOutput(
                    self,
                    outputs.on_prem_role_output(pool),
                    value=access.role.role_arn,
                    description=f"Role the on-prem workers of pool {pool} assume",
                )
        CfnOutput(
            self,
            outputs.DASHBOARD_NAME,
            value=self.monitoring.dashboard.dashboard_name,
            description="CloudWatch dashboard",
        )
        CfnOutput(
            self,
            outputs.ECS_CLUSTER_ARN,
            value=self.ecs.cluster_arn,
            description="ECS cluster of the flow-run tasks",
        )
        if self.web_ui is not None:
            CfnOutput(
                self,
                outputs.UI_URL,
                value=self.web_ui.url,
                description=f"The web UI (sets {outputs.OPTIONAL_OUTPUTS[outputs.UI_URL]})",
            )
        CfnOutput(
            self,
            outputs.AUTOMATIONS_FAILURE_QUEUE_URL,
            value=self.functions.automations_failures.queue_url,
            description="Stream records the automations Lambda gave up on",
        )
