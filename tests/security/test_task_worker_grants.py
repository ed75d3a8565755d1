"""Background tasks (docs/background-tasks.md): what the Lambda task worker's role may
do, and that no other worker principal may consume the task queue, judged against the
synthesized template's policies (the emulator enforces no IAM)."""

from __future__ import annotations

from typing import Any

import pytest

from stratoflow import resources
from tests.security._iam import (
    Request,
    is_allowed,
    managed_policy_statements,
    only_resource,
    resolve,
    role_of,
    role_statements,
)

PREFIX = "stratoflow-full"


def _function_role(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    function = only_resource(template, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{name}")
    return role_statements(template, role_of(function["Role"]))


def _arn(template: dict[str, Any], kind: str, **properties: Any) -> str:
    ids = [
        logical_id
        for logical_id, r in template["Resources"].items()
        if r["Type"] == kind
        and all(
            k in r["Properties"] and resolve(r["Properties"][k]) == v for k, v in properties.items()
        )
    ]
    assert len(ids) == 1, ids
    return f"{{{ids[0]}.Arn}}"


@pytest.fixture(scope="module")
def worker(full_template_json: dict[str, Any]) -> list[dict[str, Any]]:
    return _function_role(full_template_json, "task-worker")


@pytest.fixture(scope="module")
def arns(full_template_json: dict[str, Any]) -> dict[str, str]:
    t = full_template_json
    queue = resources.task_queue_name(PREFIX)
    return {
        "table": _arn(t, "AWS::DynamoDB::Table"),
        "queue": _arn(t, "AWS::SQS::Queue", QueueName=queue),
        "dlq": _arn(t, "AWS::SQS::Queue", QueueName=resources.dead_letter_queue_of(queue)),
        "work queue": _arn(t, "AWS::SQS::Queue", QueueName=f"{PREFIX}-default-default"),
        "results": _bucket(t, "results"),
        "code": _bucket(t, "code"),
    }


def _bucket(template: dict[str, Any], part: str) -> str:
    ids = [
        logical_id
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::S3::Bucket" and part in logical_id.lower()
    ]
    assert len(ids) == 1, ids
    return f"{{{ids[0]}.Arn}}"


def write(table: str, partition: str) -> Request:
    return Request("dynamodb:PutItem", table, {"dynamodb:LeadingKeys": [partition]})


def test_the_task_worker_writes_only_task_runs_and_cache_entries(
    worker: list[dict[str, Any]], arns: dict[str, str]
) -> None:
    table = arns["table"]
    assert is_allowed(worker, Request("dynamodb:GetItem", table))
    assert is_allowed(worker, write(table, "TASKRUN#0b0c"))
    assert is_allowed(worker, write(table, "CACHE#abc"))
    for partition in (
        "FLOWRUN#x",
        "DEPLOYMENT#etl",
        "WORKPOOL#default",
        "AUTOMATION#a",
        "CONCURRENCYLIMIT#l",
        "CONCURRENCY#l",
        "BLOCK#secret/x",
        "EVENT#e",
        "WORKER#default",
    ):
        assert not is_allowed(worker, write(table, partition)), partition
    assert not is_allowed(worker, Request("dynamodb:Scan", table))


def test_the_task_worker_reaches_only_task_results_and_no_code(
    worker: list[dict[str, Any]], arns: dict[str, str]
) -> None:
    results, code = arns["results"], arns["code"]
    for key in ("results/task-runs/abc", "results/cache/k"):
        for action in ("s3:GetObject", "s3:PutObject"):
            assert is_allowed(worker, Request(action, f"{results}/{key}")), (action, key)
    for key in ("results/0b0c-flow-run/task", "results/other"):
        for action in ("s3:GetObject", "s3:PutObject"):
            assert not is_allowed(worker, Request(action, f"{results}/{key}")), (action, key)
    assert not is_allowed(worker, Request("s3:GetObject", f"{code}/bundles/abc.zip"))


def test_the_task_worker_consumes_and_sends_only_on_the_task_queue(
    worker: list[dict[str, Any]], arns: dict[str, str]
) -> None:
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"):
        assert is_allowed(worker, Request(action, arns["queue"])), action
        assert not is_allowed(worker, Request(action, arns["work queue"])), action
    assert is_allowed(worker, Request("sqs:SendMessage", arns["dlq"]))
    assert not is_allowed(worker, Request("sqs:ReceiveMessage", arns["dlq"]))


def test_the_scheduler_may_only_send_retries_to_the_task_queue(
    full_template_json: dict[str, Any], arns: dict[str, str]
) -> None:
    scheduler = _function_role(full_template_json, "scheduler")
    assert is_allowed(scheduler, Request("sqs:SendMessage", arns["queue"]))
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
        assert not is_allowed(scheduler, Request(action, arns["queue"])), action
    for action in ("sqs:SendMessage", "sqs:ReceiveMessage"):
        assert not is_allowed(scheduler, Request(action, arns["dlq"])), action


@pytest.mark.parametrize("principal", ["lambda worker", "ecs dispatcher", "on-prem default"])
def test_no_flow_worker_may_consume_or_send_to_the_task_queue(
    full_template_json: dict[str, Any], arns: dict[str, str], principal: str
) -> None:
    t = full_template_json
    statements = {
        "lambda worker": lambda: _function_role(t, "lambda-worker"),
        "ecs dispatcher": lambda: _function_role(t, "ecs-dispatcher"),
        "on-prem default": lambda: managed_policy_statements(t, "on-prem-default"),
    }[principal]()
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"):
        assert not is_allowed(statements, Request(action, arns["queue"])), action
