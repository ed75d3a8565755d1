"""Fixtures of the backend contract: the same `Services` on the memory backend and on AWS.

The AWS services run against moto in-process (`mock_aws`), on resources created by
`stratoflow.resources.provision`, exactly as `build_aws_services` wires them for a worker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from stratoflow.backends.aws import AwsBackend, build_aws_services
from stratoflow.clock import FakeClock
from stratoflow.context import Services, set_process_services
from stratoflow.resources import ResourceNames, provision
from stratoflow.settings import load_settings
from stratoflow.testing import stratoflow_test_harness

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

MakeAwsServices = Callable[..., Services]


_MODELS = botocore.loaders.create_loader()


def new_session() -> boto3.Session:
    """`boto3.Session(region_name="us-east-1")`, sharing the service models already loaded
    (loading them again for every test's clients is most of a test's time)."""
    core = botocore.session.Session()
    core.register_component("data_loader", _MODELS)
    return boto3.Session(botocore_session=core, region_name="us-east-1")


def serialize_moto_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let moto handle one request at a time.

    moto applies a request from any thread without a lock, so two conditional writes
    can both pass their check; DynamoDB evaluates a condition and writes atomically.
    Clients still race exactly as on AWS: their requests interleave in any order.
    """
    lock = threading.RLock()
    process = BotocoreStubber.process_request

    def process_one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_one_at_a_time)


def isolate_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, us-east-1, and no STRATOFLOW_* or endpoint overrides from outside."""
    for name in list(os.environ):
        if name.startswith("STRATOFLOW_") or name in {
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_LOGS",
        }:
            monkeypatch.delenv(name)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)


def close_aws_services(services: Services) -> None:
    """Stop the write-behind threads (task runs, log lines) while the mock is still on."""
    backend = services.backend
    assert isinstance(backend, AwsBackend)
    backend.task_runs.close()
    backend.logs.close()


@pytest.fixture
def aws_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """A boto3 session on moto with the whole resource model provisioned."""
    isolate_aws_environment(monkeypatch)
    serialize_moto_requests(monkeypatch)
    with mock_aws():
        session = new_session()
        provision(session, ResourceNames.from_settings(load_settings()))
        yield session


@pytest.fixture
def make_aws_services(aws_session: boto3.Session) -> Iterator[MakeAwsServices]:
    """Builds AWS services from the current settings, as a separate worker would."""
    built: list[Services] = []

    def make(**kwargs: Any) -> Services:
        kwargs.setdefault("clock", FakeClock(datetime.now(UTC)))
        services = build_aws_services(load_settings(), session=aws_session, **kwargs)
        built.append(services)
        return services

    yield make
    for services in reversed(built):
        close_aws_services(services)


@pytest.fixture
def memory_services() -> Iterator[Services]:
    with stratoflow_test_harness(clock=FakeClock(datetime.now(UTC))) as harness:
        yield harness.services


@pytest.fixture(params=["memory", "aws"])
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def services(backend_name: str, request: pytest.FixtureRequest) -> Iterator[Services]:
    """The services of one backend, also installed as the process's services."""
    if backend_name == "memory":
        built: Services = request.getfixturevalue("memory_services")
    else:
        built = request.getfixturevalue("make_aws_services")()
    previous = set_process_services(built)
    try:
        yield built
    finally:
        set_process_services(previous)


@pytest.fixture
def make_peer(
    backend_name: str, services: Services, request: pytest.FixtureRequest
) -> Callable[[], Services]:
    """Another client of the same store: a fresh AWS backend (a separate worker), or the
    same memory services (a memory backend lives in one process)."""
    if backend_name == "memory":
        return lambda: services
    make: MakeAwsServices = request.getfixturevalue("make_aws_services")
    return make
