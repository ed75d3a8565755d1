"""The Lambda task worker (functions/task_worker/handler.py) on moto, with the SQS event
shape the event source mapping delivers (stratoflow.dev.event_sources.sqs_event)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import _background_tasks as tasks
import pytest
from _deploy_fixtures import Installation, installation  # noqa: F401

from stratoflow.background.queue import TaskQueue
from stratoflow.dev.event_sources import sqs_event
from stratoflow.settings import get_settings
from stratoflow.states import Pending, Running, StateType
from stratoflow.workers.queues import REASON_ATTRIBUTE

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "task_worker" / "handler.py"


@dataclass
class FakeLambdaContext:
    function_name: str = "stratoflow-task-worker"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:stratoflow-task-worker"
    )
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_millis: int = 600_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@pytest.fixture
def handler(installation: Installation, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    tasks.CALLS.clear()
    monkeypatch.setenv("STRATOFLOW_TASK_MODULES", "_background_tasks")
    get_settings.cache_clear()
    spec = importlib.util.spec_from_file_location("task_worker_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def queue(found: Installation) -> TaskQueue:
    return TaskQueue(found.session.client("sqs"), found.platform.settings.queue_prefix)


def receive(found: Installation, name: str) -> list[dict[str, Any]]:
    sqs = found.session.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return list(
        sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
    )


def arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:123456789012:{name}"


def test_the_lambda_task_worker_runs_a_record(
    installation: Installation, handler: ModuleType
) -> None:
    future = tasks.add.delay(20, 22)
    messages = receive(installation, queue(installation).name)
    response = handler.handler(
        sqs_event(messages, arn(queue(installation).name)), FakeLambdaContext()
    )
    assert response == {"batchItemFailures": []}
    assert future.result(timeout=5) == 42
    assert tasks.CALLS == [("add", (20, 22))]


def test_a_record_from_another_queue_is_dead_lettered_unread(
    installation: Installation, handler: ModuleType
) -> None:
    future = tasks.add.delay(1, 2)
    messages = receive(installation, queue(installation).name)
    other = installation.platform.queues.name("default", "default")
    response = handler.handler(sqs_event(messages, arn(other)), FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    (dead,) = receive(installation, queue(installation).dead_letter_name)
    assert "misconfigured" in dead["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert future.state.type is StateType.SCHEDULED
    assert tasks.CALLS == []


def test_too_little_time_hands_the_record_back(
    installation: Installation, handler: ModuleType
) -> None:
    future = tasks.add.delay(1, 2)
    messages = receive(installation, queue(installation).name)
    response = handler.handler(
        sqs_event(messages, arn(queue(installation).name)),
        FakeLambdaContext(remaining_millis=5_000),
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert future.state.type is StateType.SCHEDULED


def test_a_record_delivered_again_after_its_invocation_timed_out_retries_the_run(
    installation: Installation, handler: ModuleType
) -> None:
    """The invocation that ran the run timed out mid-attempt (its lease never renewed);
    SQS delivers the record again after the visibility timeout: the run is crashed and
    retried in this invocation (`sturdy` has a retry)."""
    future = tasks.sturdy.delay("z")
    (message,) = receive(installation, queue(installation).name)
    timed_out = installation.new_platform().backend
    run = timed_out.read_task_run(future.task_run_id)
    now = installation.clock.now()
    timed_out.held.claim(run, [Pending("Claimed.")], now=now, lease_seconds=90, retries=1)
    run.run_count = 1
    timed_out.held.set_state(run.id, Running())
    installation.clock.advance(6 * 900)  # the queue's visibility: 6 x the function timeout
    response = handler.handler(
        sqs_event([message], arn(queue(installation).name)), FakeLambdaContext()
    )
    assert response == {"batchItemFailures": []}
    assert future.result(timeout=5) == "ok z"
    stored = installation.services.backend.read_task_run(future.task_run_id)
    assert "Crashed" in [s.name for s in stored.state_history]
    assert stored.run_count == 2
