"""Background tasks in the stack: the task queue and its DLQ (every stack) and the Lambda
task worker with its SQS event source (with `-c task_modules=...`)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest

from infra.context import ContextError, parse_options
from infra.stacks.stratoflow_stack import StratoflowStack
from stratoflow import resources
from tests.infra._cdk import CDK_JSON_CONTEXT, Synthesized, logical_id, only, resources_of


def test_every_stack_has_the_task_queue_with_a_14_day_dlq(
    default_template: Any, full_template: Any
) -> None:
    for template, prefix in (
        (default_template, "stratoflow-dev"),
        (full_template, "stratoflow-full"),
    ):
        queue = only(template, "AWS::SQS::Queue", {"QueueName": resources.task_queue_name(prefix)})
        dlq = only(template, "AWS::SQS::Queue", {"QueueName": f"{prefix}-tasks-dlq"})
        for props in (queue, dlq):
            assert props["MessageRetentionPeriod"] == resources.QUEUE_RETENTION_SECONDS
            assert props["SqsManagedSseEnabled"] is True
        assert queue["RedrivePolicy"]["maxReceiveCount"] == resources.MAX_RECEIVE_COUNT


def test_without_task_modules_there_is_no_task_worker(default_template: Any) -> None:
    names = {
        f["Properties"].get("FunctionName")
        for f in resources_of(default_template, "AWS::Lambda::Function").values()
    }
    assert "stratoflow-dev-task-worker" not in names


def test_the_task_worker_serves_the_named_modules_from_the_task_queue(
    full_template: Any, synthesized: Synthesized
) -> None:
    stack = synthesized.full
    assert stack.task_worker is not None
    function = only(
        full_template, "AWS::Lambda::Function", {"FunctionName": "stratoflow-full-task-worker"}
    )
    assert function["Handler"] == "functions.task_worker.handler.handler"
    assert function["Timeout"] == 300
    variables = function["Environment"]["Variables"]
    assert variables["STRATOFLOW_TASK_MODULES"] == "functions.tasks.example,functions.tasks.more"
    assert variables["STRATOFLOW_QUEUE_PREFIX"] == "stratoflow-full"
    mapping = only(
        full_template,
        "AWS::Lambda::EventSourceMapping",
        {"FunctionName": {"Ref": logical_id(stack, stack.task_worker.function)}},
    )
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == {
        "Fn::GetAtt": [logical_id(stack, stack.task_queue.queue), "Arn"]
    }
    queue = only(full_template, "AWS::SQS::Queue", {"QueueName": "stratoflow-full-tasks"})
    assert queue["VisibilityTimeout"] == 6 * 300  # AWS's advice: 6 x the function's timeout


def test_task_modules_are_module_names() -> None:
    assert parse_options({"task_modules": "a.b, c"}).task_modules == ("a.b", "c")
    with pytest.raises(ContextError, match="task_modules"):
        parse_options({"task_modules": "tasks.py:add"})


def test_a_work_queue_named_like_the_task_dlq_is_refused() -> None:
    options = parse_options(
        {"stage": "clash", "work_pools": '{"tasks": {"queues": [{"name": "dlq"}]}}'}
    )
    app = cdk.App(context={**CDK_JSON_CONTEXT, "aws:cdk:bundling-stacks": []})
    with pytest.raises(ValueError, match="has the name of the task queue or its DLQ"):
        StratoflowStack(app, options.stack_name, options=options)
