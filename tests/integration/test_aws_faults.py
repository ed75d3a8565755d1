"""The AWS backend under AWS faults: throttling, 5xx, lost races, exhausted retries and
partial batch writes, on moto with faults injected through botocore's event hooks.

Retrying throttled and 5xx requests is botocore's job (its `standard` retry mode); the
backend has no retry loop of its own for them. Its own loops are for what botocore does
not retry: a lost conditional write (re-read, re-apply) and BatchWriteItem's
UnprocessedItems.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from stratoflow.backends.aws import AwsBackend, S3ResultStore, build_aws_services
from stratoflow.clock import FakeClock
from stratoflow.context import Services
from stratoflow.exceptions import ConflictError
from stratoflow.models import FlowRun, TaskRun
from stratoflow.resources import ResourceNames, provision
from stratoflow.settings import load_settings
from stratoflow.states import Cancelling, Completed, Pending, Running

THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "throttled",
    }
).encode()
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
UNDELIVERED = "https://fault-injected.invalid/"

_MODELS = botocore.loaders.create_loader()


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class Fault:
    """A `before-send` hook that answers for the service: an error for the first `times`
    attempts (every attempt when None); later attempts go through (it returns None)."""

    def __init__(
        self, status: int, body: bytes, content_type: str, *, times: int | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.times = times
        self.attempts = 0
        self._lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        with self._lock:
            self.attempts += 1
            if self.times is not None and self.attempts > self.times:
                return None
        # moto's stubber listens to the same event and would still apply the request;
        # a throttled request never reaches the table, so this one is sent nowhere.
        request.url = UNDELIVERED
        return AWSResponse(
            UNDELIVERED, self.status, {"Content-Type": self.content_type}, _Body(self.body)
        )


def throttling(times: int | None = None) -> Fault:
    return Fault(400, THROTTLED, "application/x-amz-json-1.0", times=times)


def slow_down(times: int | None = None) -> Fault:
    return Fault(503, SLOW_DOWN, "application/xml", times=times)


# Fixtures


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore still decides whether and how often to retry; it just does not sleep."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name in list(os.environ):
        if name.startswith(("STRATOFLOW_", "AWS_ENDPOINT_URL")) or name in {
            "AWS_PROFILE",
            "AWS_REGION",
        }:
            monkeypatch.delenv(name)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Nothing is written behind while a test counts attempts: it flushes by hand.
    monkeypatch.setenv("STRATOFLOW_TASK_RUN_FLUSH_SECONDS", "3600")
    monkeypatch.setenv("STRATOFLOW_LOG_FLUSH_SECONDS", "3600")
    # DynamoDB checks a condition and writes atomically; moto needs a lock for that.
    lock = threading.RLock()
    process = BotocoreStubber.process_request

    def one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_at_a_time)
    with mock_aws():
        core = botocore.session.Session()
        core.register_component("data_loader", _MODELS)  # loaded once for all tests
        boto_session = boto3.Session(botocore_session=core, region_name="us-east-1")
        provision(boto_session, ResourceNames.from_settings(load_settings()))
        yield boto_session


@pytest.fixture
def make_services(session: boto3.Session) -> Iterator[Callable[[], Services]]:
    """Services as a worker builds them from the settings (one backend per call)."""
    built: list[Services] = []

    def make() -> Services:
        services = build_aws_services(
            load_settings(), session=session, clock=FakeClock(datetime.now(UTC))
        )
        built.append(services)
        return services

    yield make
    for services in built:
        backend = aws_backend(services)
        backend.task_runs.close()
        backend.logs.close()


@pytest.fixture
def services(make_services: Callable[[], Services]) -> Services:
    return make_services()


def aws_backend(services: Services) -> AwsBackend:
    assert isinstance(services.backend, AwsBackend)
    return services.backend


def new_flow_run(backend: AwsBackend) -> FlowRun:
    run_id = str(uuid.uuid4())
    return backend.create_flow_run(
        FlowRun(id=run_id, name=f"run-{run_id[:8]}", flow_name="faults", created=datetime.now(UTC))
    )


def new_task_runs(backend: AwsBackend, flow_run_id: str, count: int) -> list[TaskRun]:
    base = datetime.now(UTC)
    runs = []
    for i in range(count):
        run = TaskRun(
            id=str(uuid.uuid4()),
            name=f"task-{i}",
            task_key="task-key",
            dynamic_key=str(i),
            task_name="task",
            flow_run_id=flow_run_id,
            created=base + timedelta(milliseconds=i),
        )
        backend.create_task_run(run)
        backend.set_task_run_state(run.id, Running())
        runs.append(run)
    return runs


# Throttling and 5xx: botocore retries


def test_a_throttled_transition_is_retried_by_botocore(
    services: Services, make_services: Callable[[], Services]
) -> None:
    backend = aws_backend(services)
    run = new_flow_run(backend)
    fault = throttling(times=2)
    backend.dynamodb.meta.events.register("before-send.dynamodb.UpdateItem", fault)

    result = backend.set_flow_run_state(run.id, Pending("claimed"))

    assert fault.attempts == 3  # two throttled, the third went through
    assert (result.applied, result.version) == (True, 1)
    stored = aws_backend(make_services()).read_flow_run(run.id)
    assert (stored.state_name, stored.version) == ("Pending", 1)
    assert stored.state is not None
    assert stored.state.message == "claimed"
    assert stored.state_history == []  # applied once: the throttled attempts wrote nothing


def test_a_throttled_task_run_flush_is_retried_by_botocore(
    services: Services, make_services: Callable[[], Services]
) -> None:
    backend = aws_backend(services)
    flow_run = new_flow_run(backend)
    task_runs = new_task_runs(backend, flow_run.id, 3)
    fault = throttling(times=2)
    backend.dynamodb.meta.events.register("before-send.dynamodb.BatchWriteItem", fault)

    backend.flush()

    assert fault.attempts == 3
    stored = aws_backend(make_services()).list_task_runs(flow_run.id)
    assert [(r.id, r.state_name) for r in stored] == [(r.id, "Running") for r in task_runs]


def test_an_s3_slow_down_is_retried_by_botocore(services: Services) -> None:
    store = services.result_store
    assert isinstance(store, S3ResultStore)
    fault = slow_down(times=2)
    store.client.meta.events.register("before-send.s3.PutObject", fault)

    store.write("faults/result", b"payload")

    assert fault.attempts == 3
    assert store.read("faults/result") == b"payload"


# Lost races: conditional-check failures


def test_a_lost_conditional_write_is_a_conflict_naming_the_run(
    services: Services, make_services: Callable[[], Services]
) -> None:
    first = aws_backend(services)
    second = aws_backend(make_services())
    run = new_flow_run(first)
    first.set_flow_run_state(run.id, Pending())  # `first` now holds the run at version 1

    second.set_flow_run_state(run.id, Running("by the second worker"), expected_version=1)

    with pytest.raises(ConflictError, match=run.id) as caught:
        first.set_flow_run_state(run.id, Running("by the first worker"), expected_version=1)
    assert "version 1" in str(caught.value)
    stored = second.read_flow_run(run.id)
    assert (stored.state_name, stored.version) == ("Running", 2)
    assert stored.state is not None
    assert stored.state.message == "by the second worker"


def test_without_expected_version_a_lost_write_is_reapplied_on_top(
    services: Services, make_services: Callable[[], Services]
) -> None:
    first = aws_backend(services)
    second = aws_backend(make_services())
    run = new_flow_run(first)
    first.adopt_flow_run(run)  # an engine of the first process runs it (holds a copy)
    first.set_flow_run_state(run.id, Pending())
    second.set_flow_run_state(run.id, Running("second worker runs it"))
    updates = []
    first.dynamodb.meta.events.register(
        "before-send.dynamodb.UpdateItem", lambda **kwargs: updates.append(1)
    )

    result = first.set_flow_run_state(run.id, Cancelling("operator cancels"))

    assert len(updates) == 2  # the first write lost the race; re-read, re-applied
    assert (result.applied, result.version) == (True, 3)
    stored = aws_backend(make_services()).read_flow_run(run.id)
    assert (stored.state_name, stored.version) == ("Cancelling", 3)
    assert [(s.name, s.message) for s in stored.state_history] == [
        ("Pending", None),
        ("Running", "second worker runs it"),
    ]


def test_creating_an_existing_flow_run_is_a_conflict(
    services: Services, make_services: Callable[[], Services]
) -> None:
    run = new_flow_run(aws_backend(services))
    duplicate = FlowRun(id=run.id, name="again", flow_name="faults", created=datetime.now(UTC))
    with pytest.raises(ConflictError, match=f"{run.id} already exists"):
        aws_backend(make_services()).create_flow_run(duplicate)
    assert aws_backend(services).read_flow_run(run.id).name == run.name


# Retries exhausted: the error reaches the caller


@pytest.fixture
def two_retries(monkeypatch: pytest.MonkeyPatch, session: boto3.Session) -> None:
    """Clients built from here on make at most 2 attempts (STRATOFLOW_AWS_MAX_ATTEMPTS)."""
    monkeypatch.setenv("STRATOFLOW_AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("STRATOFLOW_AWS_MAX_ATTEMPTS", "2")


@pytest.mark.usefixtures("two_retries")
def test_exhausted_retries_surface_and_leave_the_run_unchanged(
    make_services: Callable[[], Services],
) -> None:
    backend = aws_backend(make_services())
    run = new_flow_run(backend)
    backend.set_flow_run_state(run.id, Pending())
    fault = throttling()
    backend.dynamodb.meta.events.register("before-send.dynamodb.UpdateItem", fault)

    with pytest.raises(ClientError) as caught:
        backend.set_flow_run_state(run.id, Running())

    assert caught.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    # STRATOFLOW_AWS_MAX_ATTEMPTS counts every attempt: the first one and one retry.
    assert fault.attempts == 2
    stored = aws_backend(make_services()).read_flow_run(run.id)
    assert (stored.state_name, stored.version) == ("Pending", 1)

    # The backend's own copy was rolled back too: once AWS answers, it carries on.
    backend.dynamodb.meta.events.unregister("before-send.dynamodb.UpdateItem", fault)
    assert backend.set_flow_run_state(run.id, Running()).version == 2
    assert aws_backend(make_services()).read_flow_run(run.id).state_name == "Running"


@pytest.mark.usefixtures("two_retries")
def test_an_exhausted_task_run_flush_surfaces_and_loses_nothing(
    make_services: Callable[[], Services],
) -> None:
    backend = aws_backend(make_services())
    flow_run = new_flow_run(backend)
    task_runs = new_task_runs(backend, flow_run.id, 3)
    for run in task_runs:
        backend.set_task_run_state(run.id, Completed())
    fault = throttling()
    backend.dynamodb.meta.events.register("before-send.dynamodb.BatchWriteItem", fault)

    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        backend.flush()
    assert fault.attempts == 2

    # The task runs are still waiting to be written: the next flush writes them.
    backend.dynamodb.meta.events.unregister("before-send.dynamodb.BatchWriteItem", fault)
    backend.flush()
    stored = aws_backend(make_services()).list_task_runs(flow_run.id)
    assert [(r.id, r.state_name) for r in stored] == [(r.id, "Completed") for r in task_runs]


# BatchWriteItem: UnprocessedItems are sent again


class PartialBatches:
    """Stands in for the DynamoDB client of the task run writer: the first BatchWriteItem
    writes only `keep` of its items and reports the rest as UnprocessedItems, as DynamoDB
    does when a partition is hot."""

    def __init__(self, client: Any, keep: int) -> None:
        self.client = client
        self.keep = keep
        self.batches: list[int] = []

    def batch_write_item(self, *, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        self.batches.append(len(requests))
        if len(self.batches) > 1:
            return self.client.batch_write_item(RequestItems=RequestItems)  # type: ignore[no-any-return]
        self.client.batch_write_item(RequestItems={table: requests[: self.keep]})
        return {"UnprocessedItems": {table: requests[self.keep :]}}


def test_unprocessed_items_are_sent_again(
    services: Services, make_services: Callable[[], Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = aws_backend(services)
    flow_run = new_flow_run(backend)
    task_runs = new_task_runs(backend, flow_run.id, 20)  # one batch (fewer than 25)
    partial = PartialBatches(backend.dynamodb, keep=8)
    monkeypatch.setattr(backend.task_runs, "client", partial)

    backend.flush()

    assert partial.batches == [20, 12]  # the 12 unprocessed items went out again
    stored = aws_backend(make_services()).list_task_runs(flow_run.id)
    assert [(r.id, r.state_name) for r in stored] == [(r.id, "Running") for r in task_runs]


# A write that was applied but whose response was lost


def test_a_transition_whose_response_was_lost_is_not_applied_twice(services: Services) -> None:
    """botocore retries an UpdateItem that DynamoDB had applied (the response was lost):
    the retry fails the version condition, and the re-read run carries the transition's
    id, so the transition counts as done — no error, no second history entry."""
    backend = aws_backend(services)
    run = new_flow_run(backend)
    backend.adopt_flow_run(run)
    backend.set_flow_run_state(run.id, Pending())
    backend.set_flow_run_state(run.id, Running())
    forced: list[str] = []

    def lose_the_first_response(response: Any, attempts: int, operation: Any, **_: Any) -> Any:
        http = response[0] if response else None
        if http is not None and http.status_code == 200 and attempts == 1 and not forced:
            forced.append(operation.name)
            return 0  # retry at once, although the write was applied
        return None

    backend.dynamodb.meta.events.register(
        "needs-retry.dynamodb.UpdateItem", lose_the_first_response
    )
    result = backend.set_flow_run_state(run.id, Completed())
    assert forced == ["UpdateItem"]
    assert result.state.name == "Completed"
    stored = aws_backend(services).read_flow_run(run.id)
    names = [s.name for s in [*stored.state_history, stored.state] if s is not None]
    assert names == ["Pending", "Running", "Completed"]
