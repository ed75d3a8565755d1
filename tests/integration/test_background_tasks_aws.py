"""Background tasks on moto: `.delay` stores a Scheduled run and sends its message, a task
worker claims and runs it once, the future reads the result through the backend; what a
worker refuses (unserved task, another task's run, tampered pickled parameters)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import _background_tasks as tasks
import cloudpickle
import pytest
from _deploy_fixtures import Installation, installation  # noqa: F401

from stratoflow import resources
from stratoflow.background.messages import TaskRunMessage
from stratoflow.background.parameters import ParametersNotStorable, StoredParameters
from stratoflow.background.polling import build_worker, poll
from stratoflow.background.queue import TaskQueue
from stratoflow.background.store import TaskRunParameters
from stratoflow.context import use_services
from stratoflow.runs import read_result
from stratoflow.states import StateType
from stratoflow.task_worker import serve
from stratoflow.workers.queues import REASON_ATTRIBUTE


@pytest.fixture(autouse=True)
def clean_calls() -> Iterator[None]:
    tasks.CALLS.clear()
    tasks.EXPLODED.clear()
    yield


def task_queue(found: Installation) -> TaskQueue:
    return TaskQueue(found.session.client("sqs"), found.platform.settings.queue_prefix)


def dead_letters(found: Installation) -> list[tuple[str, str]]:
    queue = task_queue(found)
    sqs = queue.client
    url = sqs.get_queue_url(QueueName=queue.dead_letter_name)["QueueUrl"]
    got = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])
    return [(m["Body"], m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]) for m in got]


def item(found: Installation, key: dict[str, str]) -> dict[str, Any]:
    table = found.platform.backend.table
    response = found.session.client("dynamodb").get_item(
        TableName=table, Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True
    )
    return dict(response["Item"])


def test_delay_runs_on_the_task_worker_and_the_future_reads_the_result(
    installation: Installation,
) -> None:
    future = tasks.add.delay(2, 3)
    assert tasks.CALLS == []  # not run in the caller
    stored = item(installation, resources.task_run_key(None, future.task_run_id))
    assert stored["state_type"]["S"] == "SCHEDULED"
    assert stored["task_key"]["S"] == tasks.add.task_key
    parameters = item(installation, resources.task_run_parameters_key(future.task_run_id))
    document = StoredParameters.model_validate_json(parameters["document"]["S"])
    assert (document.serializer, json.loads(document.data)) == ("json", {"a": 2, "b": 3})
    (sent,) = [m for m in installation.sent if m["QueueUrl"].endswith("-tasks")]
    message = TaskRunMessage.model_validate_json(sent["MessageBody"])
    assert (message.task_run_id, message.task_key) == (future.task_run_id, tasks.add.task_key)

    assert serve(tasks.add, once=True) == 1

    assert future.result(timeout=5) == 5
    assert tasks.CALLS == [("add", (2, 3))]
    run = installation.services.backend.read_task_run(future.task_run_id)
    assert [s.name for s in run.state_history] == ["Scheduled", "Pending", "Pending", "Running"]
    assert run.state is not None and run.state.name == "Completed"
    assert read_result(run) == 5
    assert run.result_record is not None and run.result_record.serializer == "json"


def test_a_duplicate_delivery_runs_once(installation: Installation) -> None:
    future = tasks.add.delay(1, 1)
    queue = task_queue(installation)
    queue.send(TaskRunMessage(task_run_id=future.task_run_id, task_key=tasks.add.task_key))
    assert poll(build_worker([tasks.add]), once=True, limit=1) == 2
    assert future.result(timeout=5) == 2
    assert tasks.CALLS == [("add", (1, 1))]
    assert dead_letters(installation) == []


def test_retries_and_failures_are_recorded_like_any_task_run(installation: Installation) -> None:
    flaky = tasks.flaky.delay("x")
    failing = tasks.fail.delay("boom")
    serve(tasks.flaky, tasks.fail, once=True)
    assert flaky.result(timeout=5) == "ok x"
    assert installation.services.backend.read_task_run(flaky.task_run_id).run_count == 2
    assert failing.state.type is StateType.FAILED
    with pytest.raises(Exception, match="boom"):
        failing.result(timeout=5)
    assert isinstance(failing.result(timeout=5, raise_on_failure=False), Exception)


def test_a_task_the_worker_does_not_serve_is_dead_lettered_untouched(
    installation: Installation,
) -> None:
    future = tasks.unserved.delay(1)
    serve(tasks.add, once=True)
    (reason,) = [reason for _, reason in dead_letters(installation)]
    assert tasks.unserved.task_key in reason and "does not serve" in reason
    assert future.state.type is StateType.SCHEDULED


def test_a_message_naming_another_task_than_its_run_is_refused(
    installation: Installation,
) -> None:
    future = tasks.unserved.delay(7)
    # Drain the genuine message (nobody serves `unserved` here), then plant one that
    # claims the run is an `add`.
    task_queue(installation).client.purge_queue(QueueUrl=task_queue(installation).url)
    task_queue(installation).send(
        TaskRunMessage(task_run_id=future.task_run_id, task_key=tasks.add.task_key)
    )
    before = installation.services.backend.read_task_run(future.task_run_id)
    serve(tasks.add, once=True)
    (reason,) = [reason for _, reason in dead_letters(installation)]
    assert future.task_run_id in reason and "its message names task" in reason
    after = installation.services.backend.read_task_run(future.task_run_id)
    assert (after.state, after.version) == (before.state, before.version)
    assert tasks.CALLS == []


def test_parameters_that_are_not_json_are_refused_without_the_opt_in(
    installation: Installation,
) -> None:
    with pytest.raises(ParametersNotStorable, match="not JSON"):
        tasks.describe.delay({1, 2})
    assert [m for m in installation.sent if m["QueueUrl"].endswith("-tasks")] == []


def test_pickled_parameters_are_signed_and_tampered_ones_refused(
    installation: Installation,
) -> None:
    opted_in = dataclasses.replace(installation.services, pickle_results=True)
    with use_services(opted_in):
        genuine = tasks.describe.delay({3, 1})
        tampered = tasks.describe.delay({5})
    store = TaskRunParameters(
        installation.session.client("dynamodb"), installation.platform.backend.table
    )
    signed = store.read(tampered.task_run_id)
    assert signed.serializer == "cloudpickle" and signed.signature is not None
    assert signed.signature.startswith(f"v1:{resources.TASKS_SIGNING_DOMAIN}:")
    # A worker may write TASKRUN# items: it swaps the bytes and keeps the signature.
    evil = base64.b64encode(cloudpickle.dumps({"value": tasks.Bomb()})).decode()
    store.write(tampered.task_run_id, signed.model_copy(update={"data": evil}))

    serve(tasks.describe, once=True)

    assert genuine.result(timeout=5) == "set:[1, 3]"
    assert tampered.state.type is StateType.FAILED
    assert "parameters were refused" in (tampered.state.message or "")
    assert tasks.EXPLODED == []
    assert [name for name, _ in tasks.CALLS] == ["describe"]


def test_wait_for_runs_after_its_upstream_and_not_after_a_failed_one(
    installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto delays messages in real time: a waiting run comes back at once here.
    monkeypatch.setattr("stratoflow.background.worker.UPSTREAM_WAIT_SECONDS", 0)
    first = tasks.add.delay(1, 2)
    after = tasks.add.apply_async((10, 20), wait_for=[first])
    failing = tasks.fail.delay("no")
    blocked = tasks.add.apply_async(kwargs={"a": 0, "b": 0}, wait_for=[failing])
    serve(tasks.add, tasks.fail, once=True)
    assert first.result(timeout=5) == 3
    assert after.result(timeout=5) == 30
    assert tasks.CALLS.index(("add", (1, 2))) < tasks.CALLS.index(("add", (10, 20)))
    assert failing.state.type is StateType.FAILED
    assert blocked.state.name == "NotReady"
    assert ("add", (0, 0)) not in tasks.CALLS
