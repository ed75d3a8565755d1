"""Run logs, notifications, the dashboard and the alarms.

Metrics: the SDK publishes no CloudWatch metrics of its own yet, so "flow runs by final
state" comes from metric filters on the runs log group (the flow engine logs one JSON
line `Finished in state Completed()` per run, `location` = `stratoflow.flow_runs`), and
"late runs" / "crashed by sweeps" from metric filters on the scheduler's log line
`Scheduler tick` (fields `tick.late` and `tick.swept.crashed`). Queue depths and Lambda errors
and durations are the services' own metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stratoflow.logging import FLOW_RUN_LOGGER

RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

FINAL_STATES = ("Completed", "Failed", "TimedOut", "Crashed", "Cancelled")
"""Names in the flow engine's `Finished in state <Name>(...)` line."""
SCHEDULER_TICK_MESSAGE = "Scheduler tick"
"""The scheduler handler's log line after each tick (functions/scheduler/handler.py),
with the tick's report under `tick`."""
LATE_RUNS_VALUE = "$.tick.late"
SWEPT_CRASHED_VALUE = "$.tick.swept.crashed"
PERIOD = Duration.minutes(5)


def retention(days: int) -> logs.RetentionDays:
    return RETENTION[days]


def finished_metric_name(state: str) -> str:
    return f"FlowRuns{state}"


class RunLogs(Construct):
    """The runs log group (name from the resource model) and the "flow runs by final
    state" metric filters."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        retention_days: int,
        namespace: str,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.namespace = namespace
        self.log_group = logs.LogGroup(
            self,
            "Runs",
            log_group_name=name,
            retention=retention(retention_days),
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.finished: dict[str, cloudwatch.Metric] = {}
        for state in FINAL_STATES:
            metric_filter = self.log_group.add_metric_filter(
                f"Finished{state}",
                filter_pattern=logs.FilterPattern.all(
                    logs.FilterPattern.string_value("$.location", "=", FLOW_RUN_LOGGER),
                    logs.FilterPattern.string_value(
                        "$.message", "=", f"Finished in state {state}(*"
                    ),
                ),
                metric_namespace=namespace,
                metric_name=finished_metric_name(state),
                metric_value="1",
                default_value=0,
            )
            self.finished[state] = metric_filter.metric(statistic="Sum", period=PERIOD)


TOPIC_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")
"""What a publisher to a KMS-encrypted topic needs on its key (SNS encrypts each message
with a data key)."""


class Notifications(Construct):
    """The SNS topic of automations' notifications and of the alarms: TLS enforced,
    encrypted at rest with a customer-managed key (rotated yearly).

    Not the AWS-managed `alias/aws/sns` key: its policy cannot be changed, so CloudWatch
    could not use it and alarms would never reach the topic. This key's policy lets
    CloudWatch (`cloudwatch.amazonaws.com`) and the publishers given to `allow_publish`
    use it for publishing, and the account administer it (CDK's default policy)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: str, email: str | None
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"stratoflow ({stage}): encrypts the notifications topic",
            enable_key_rotation=True,
            # The topic keeps no messages once delivered: nothing is left to decrypt.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsPublishToTheTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=list(TOPIC_KEY_ACTIONS),
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"stratoflow-{stage}-notifications",
            display_name=f"stratoflow ({stage})",
            enforce_ssl=True,
            master_key=self.key,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def allow_publish(self, role: iam.IRole, sid: str) -> None:
        """Let `role` use the key to publish (its own policy allows `sns:Publish`)."""
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[role],
                actions=list(TOPIC_KEY_ACTIONS),
                resources=["*"],
            )
        )


@dataclass(frozen=True)
class QueueMetrics:
    label: str
    queue: sqs.IQueue


class Monitoring(Construct):
    """Dashboard (runs by state, late runs, queue and DLQ depth, Lambda errors and
    durations) and alarms (any message in a DLQ or the automations failure queue, any
    Lambda error) notifying the topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        namespace: str,
        run_logs: RunLogs,
        scheduler_log_group: logs.ILogGroup,
        functions: Sequence[lambda_.Function],
        work_queues: Sequence[QueueMetrics],
        dead_letter_queues: Sequence[QueueMetrics],
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        late = logs.MetricFilter(
            self,
            "LateRuns",
            log_group=scheduler_log_group,
            filter_pattern=logs.FilterPattern.string_value(
                "$.message", "=", SCHEDULER_TICK_MESSAGE
            ),
            metric_namespace=namespace,
            metric_name="LateFlowRuns",
            metric_value=LATE_RUNS_VALUE,
            default_value=0,
        ).metric(statistic="Sum", period=PERIOD)
        crashed = logs.MetricFilter(
            self,
            "SweptCrashed",
            log_group=scheduler_log_group,
            filter_pattern=logs.FilterPattern.string_value(
                "$.message", "=", SCHEDULER_TICK_MESSAGE
            ),
            metric_namespace=namespace,
            metric_name="FlowRunsCrashedBySweep",
            metric_value=SWEPT_CRASHED_VALUE,
            default_value=0,
        ).metric(statistic="Sum", period=PERIOD)

        action = cw_actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []
        for item in dead_letter_queues:
            alarm = item.queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            ).create_alarm(
                self,
                f"{item.label.replace('/', '.')} depth",
                alarm_description=f"Messages in {item.label}: they could not be processed "
                "(see the reason attribute, then redrive or delete them).",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            self.alarms.append(alarm)
        for function in functions:
            alarm = function.metric_errors(period=PERIOD, statistic="Sum").create_alarm(
                self,
                f"{function.node.id}Errors",
                alarm_description=f"{function.node.id} Lambda errors (see its log group).",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            self.alarms.append(alarm)

        def depth(items: Sequence[QueueMetrics]) -> list[cloudwatch.IMetric]:
            return [
                q.queue.metric_approximate_number_of_messages_visible(
                    label=q.label, period=PERIOD, statistic="Maximum"
                )
                for q in items
            ]

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=dashboard_name, default_interval=Duration.hours(6)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Flow runs by final state (5 min)",
                left=[metric.with_(label=state) for state, metric in run_logs.finished.items()],
                stacked=True,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Late runs and runs crashed by sweeps (5 min)",
                left=[late.with_(label="Late"), crashed.with_(label="Crashed (sweep)")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Work queue depth", left=depth(work_queues), width=12),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth", left=depth(dead_letter_queues), width=12
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors",
                left=[
                    f.metric_errors(label=f.node.id, period=PERIOD, statistic="Sum")
                    for f in functions
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration (p95)",
                left=[
                    f.metric_duration(label=f.node.id, period=PERIOD, statistic="p95")
                    for f in functions
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24)
        )
