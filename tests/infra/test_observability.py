"""Runs log group, metric filters, topic, dashboard and alarms."""

from __future__ import annotations

import importlib
import io
import json
from types import SimpleNamespace
from typing import Any

import pytest

from infra.constructs.observability import (
    FINAL_STATES,
    LATE_RUNS_VALUE,
    SCHEDULER_TICK_MESSAGE,
    SWEPT_CRASHED_VALUE,
)
from stratoflow import resources
from stratoflow.scheduler import TickReport
from stratoflow.sweeps import SweepReport
from tests.infra._cdk import Synthesized, logical_id, only, resources_of


def test_runs_log_group_from_the_resource_model(full_template: Any, synthesized: Synthesized):
    groups = {
        g["Properties"].get("LogGroupName"): g
        for g in resources_of(full_template, "AWS::Logs::LogGroup").values()
    }
    runs = groups[synthesized.full_options.names.runs_log_group]
    assert runs["Properties"]["RetentionInDays"] == resources.LOG_RETENTION_DAYS
    assert runs["DeletionPolicy"] == "Retain"
    # every log group of the stack has a retention
    assert all("RetentionInDays" in g["Properties"] for g in groups.values())


def test_runs_by_state_and_late_runs_come_from_metric_filters(
    full_template: Any, synthesized: Synthesized
):
    stack = synthesized.full
    filters = [
        f["Properties"] for f in resources_of(full_template, "AWS::Logs::MetricFilter").values()
    ]
    runs_group = {"Ref": logical_id(stack, stack.run_logs.log_group)}
    finished = {
        f["MetricTransformations"][0]["MetricName"]: f["FilterPattern"]
        for f in filters
        if f["LogGroupName"] == runs_group
    }
    assert set(finished) == {f"FlowRuns{state}" for state in FINAL_STATES}
    assert finished["FlowRunsCompleted"] == (
        '{ ($.location = "stratoflow.flow_runs") && ($.message = "Finished in state Completed(*") }'
    )
    scheduler_group = {"Ref": logical_id(stack, stack.functions.log_groups["Scheduler"])}
    tick = {
        f["MetricTransformations"][0]["MetricName"]: f["MetricTransformations"][0]["MetricValue"]
        for f in filters
        if f["LogGroupName"] == scheduler_group
    }
    assert tick == {"LateFlowRuns": LATE_RUNS_VALUE, "FlowRunsCrashedBySweep": SWEPT_CRASHED_VALUE}
    assert all(
        f["MetricTransformations"][0]["MetricNamespace"] == "Stratoflow/full" for f in filters
    )


def test_scheduler_handler_logs_the_tick_line_the_filters_read(monkeypatch: pytest.MonkeyPatch):
    """Run the real handler (with a fake tick) and read its JSON line with the metric
    filters' own selectors."""
    handler = importlib.import_module("functions.scheduler.handler")
    # The handler's Logger was made by whichever test imported it first: it kept that
    # test's stdout (capsys of another test, say) and level (POWERTOOLS_LOG_LEVEL=WARNING
    # in the browser tests). Read what it writes at INFO, from a stream of this test's own.
    written = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", written)
    level = handler.logger.log_level
    handler.logger.setLevel("INFO")
    report = TickReport(late=2, swept=SweepReport(crashed=1))
    monkeypatch.setattr(handler, "get_platform", lambda: None)
    monkeypatch.setattr(
        handler, "Scheduler", lambda platform: SimpleNamespace(tick=lambda **_: report)
    )
    context = SimpleNamespace(
        function_name="stratoflow-test-scheduler",
        memory_limit_in_mb=512,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:s",
        aws_request_id="req-1",
        get_remaining_time_in_millis=lambda: 60_000,
    )
    try:
        handler.handler(SCHEDULED_EVENT, context)
    finally:
        handler.logger.setLevel(level)
    lines = [json.loads(line) for line in written.getvalue().splitlines() if line.startswith("{")]
    [tick] = [line for line in lines if line.get("message") == SCHEDULER_TICK_MESSAGE]
    assert _select(tick, LATE_RUNS_VALUE) == 2
    assert _select(tick, SWEPT_CRASHED_VALUE) == 1


def test_flow_engine_logs_the_final_state_line_the_filters_read():
    import logging

    from stratoflow import flow
    from stratoflow.logging import FLOW_RUN_LOGGER
    from stratoflow.testing import stratoflow_test_harness

    @flow
    def succeeds() -> int:
        return 1

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(FLOW_RUN_LOGGER)
    logger.addHandler(handler)
    try:
        with stratoflow_test_harness():
            succeeds()
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records if r.name == FLOW_RUN_LOGGER]
    assert "Finished in state Completed()" in messages


SCHEDULED_EVENT = {
    "version": "0",
    "id": "e1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-21T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/every-minute"],
    "detail": {},
}


def _select(document: dict[str, Any], selector: str) -> Any:
    value: Any = document
    for part in selector.removeprefix("$.").split("."):
        value = value[part]
    return value


def test_topic_enforces_tls_and_mails_the_alarm_address(full_template: Any):
    only(full_template, "AWS::SNS::Topic")
    policy = only(full_template, "AWS::SNS::TopicPolicy")
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["PolicyDocument"]["Statement"]
    )
    subscription = only(full_template, "AWS::SNS::Subscription")
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == "oncall@example.com"


def test_topic_is_encrypted_with_a_rotated_key_alarms_and_automations_may_use(
    full_template: Any, synthesized: Synthesized
):
    stack = synthesized.full
    key_id = logical_id(stack, stack.notifications.key)
    topic = only(full_template, "AWS::SNS::Topic")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}  # not alias/aws/sns
    key = full_template.to_json()["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = {s.get("Sid"): s for s in key["KeyPolicy"]["Statement"]}
    publish = {"kms:Decrypt", "kms:GenerateDataKey*"}
    alarms = statements["AlarmsPublishToTheTopic"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(alarms["Action"]) == publish
    automations = statements["AutomationsPublishToTheTopic"]
    role = logical_id(stack, stack.functions.automations.role)
    assert automations["Principal"] == {"AWS": {"Fn::GetAtt": [role, "Arn"]}}
    assert set(automations["Action"]) == publish
    # The rest is CDK's default: the account administers the key through IAM.
    assert set(statements) == {None, "AlarmsPublishToTheTopic", "AutomationsPublishToTheTopic"}


def test_alarms_on_every_dlq_and_every_function(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    alarms = [
        a["Properties"] for a in resources_of(full_template, "AWS::CloudWatch::Alarm").values()
    ]
    topic = {"Ref": logical_id(stack, stack.notifications.topic)}
    assert all(a["AlarmActions"] == [topic] for a in alarms)
    queue_names = {
        json.dumps(d["Value"])
        for a in alarms
        if a["Namespace"] == "AWS/SQS"
        for d in a["Dimensions"]
    }
    expected_queues = [
        *stack.work_queues.dead_letter_queues,
        stack.functions.automations_failures,
        stack.task_queue.dead_letter_queue,
    ]
    assert queue_names == {
        json.dumps({"Fn::GetAtt": [logical_id(stack, q), "QueueName"]}) for q in expected_queues
    }
    function_alarms = [a for a in alarms if a["Namespace"] == "AWS/Lambda"]
    assert {a["MetricName"] for a in function_alarms} == {"Errors"}
    assert stack.task_worker is not None
    assert len(function_alarms) == len(stack.functions.all) + 1 == 6  # + the task worker
    assert all(a["Threshold"] == 1 for a in alarms)


def test_dashboard_shows_runs_queues_and_functions(full_template: Any):
    dashboard = only(full_template, "AWS::CloudWatch::Dashboard")
    assert dashboard["DashboardName"] == "stratoflow-full"
    body = json.dumps(dashboard["DashboardBody"])
    for title in (
        "Flow runs by final state",
        "Late runs",
        "Work queue depth",
        "Dead-letter queue depth",
        "Lambda errors",
        "Lambda duration",
    ):
        assert title in body
    assert "FlowRunsCompleted" in body
    assert "ApproximateNumberOfMessagesVisible" in body
