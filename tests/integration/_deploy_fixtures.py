"""Fixtures shared by the deployment and scheduler tests: one emulated installation
(moto in-process) with the AWS services installed for the process, and helpers.

Imported explicitly by the test modules that use it (not a conftest.py, so it does not
clash with the fixtures of the worker tests in the same directory).
"""

from __future__ import annotations

import os
import textwrap
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.sqs import models as moto_sqs

from stratoflow.backends.aws import AwsClients, build_aws_services
from stratoflow.clock import FakeClock
from stratoflow.context import Services, set_process_services
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.models import BundleInfo, Deployment
from stratoflow.platform import Platform, build_platform
from stratoflow.provisioning import provision_work_queue
from stratoflow.resources import provision
from stratoflow.settings import get_settings, load_settings
from stratoflow.workers.messages import FlowRunMessage, parse_message
from stratoflow.workers.queues import MAX_DELAY_SECONDS, PREFETCH_LEAD_SECONDS
from tests._time import anchor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START = anchor()  # yesterday 10:00 UTC: see tests/_time.py
"""Where the fake clock starts: a Saturday, on the minute."""

_MODELS = botocore.loaders.create_loader()


def new_session() -> boto3.Session:
    """A us-east-1 session that shares the service models already loaded (loading them
    again for every test's clients is most of a small test's time)."""
    core = botocore.session.Session()
    core.register_component("data_loader", _MODELS)
    return boto3.Session(botocore_session=core, region_name="us-east-1")


def serialize_moto_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto applies requests from several threads without a lock, so two conditional
    writes could both pass their check; DynamoDB checks and writes atomically. Requests
    still interleave in any order between threads, as on AWS."""
    lock = threading.RLock()
    process = BotocoreStubber.process_request

    def process_one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_one_at_a_time)


@dataclass
class Installation:
    """An emulated installation: its session, services (installed process-wide),
    platform and fake clock."""

    session: boto3.Session
    services: Services
    platform: Platform
    clock: FakeClock
    sent: list[dict[str, Any]]
    """Every SendMessage request made through the session: QueueUrl, MessageBody,
    DelaySeconds, as sent to SQS."""

    def new_platform(self) -> Platform:
        """A second client of the same installation (another scheduler, another worker)."""
        services = build_aws_services(load_settings(), session=self.session, clock=self.clock)
        self._extra.append(services)
        return build_platform(services, load_settings())

    def receive(
        self, *, after: float = 0.0, queue: str = "default", pool: str = "default"
    ) -> list[dict[str, Any]]:
        """The messages a worker receiving `after` seconds from now would get (moto keeps
        a delayed message invisible, in real time, until its delay has passed), with
        their attributes. Each is received once: later calls do not return it again."""
        sqs = self.session.client("sqs")
        url = self.platform.queues.url(pool, queue)
        real = moto_sqs.unix_time_millis
        found: list[dict[str, Any]] = []
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(moto_sqs, "unix_time_millis", lambda: real() + after * 1000)
            while True:
                batch = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    AttributeNames=["All"],
                    VisibilityTimeout=43200,  # the longest: never seen again
                ).get("Messages", [])
                if not batch:
                    return found
                found.extend(batch)

    def sent_messages(self) -> list[tuple[FlowRunMessage, int]]:
        """Every message sent so far, with the DelaySeconds it was sent with."""
        return [(parse_message(m["MessageBody"]), m["DelaySeconds"]) for m in self.sent]

    def __post_init__(self) -> None:
        self._extra: list[Services] = []


def _isolate_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name in list(os.environ):
        if name.startswith("STRATOFLOW_") or name in {
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_SQS",
            "AWS_ENDPOINT_URL_LOGS",
        }:
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STRATOFLOW_BACKEND": "aws",
        "STRATOFLOW_HOME": str(home),
        "STRATOFLOW_LOG_TO_CONSOLE": "false",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def installation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Installation]:
    _isolate_environment(monkeypatch, tmp_path / "home")
    serialize_moto_requests(monkeypatch)
    get_settings.cache_clear()
    previous: Services | None = None
    installed = False
    try:
        with mock_aws():
            session = new_session()
            provision(session)
            clock = FakeClock(START)
            sent: list[dict[str, Any]] = []

            def record(params: dict[str, Any], **_: Any) -> None:
                sent.append(dict(params))

            # Clients copy the session's event hooks when they are created: register first.
            session.events.register("provide-client-params.sqs.SendMessage", record)
            services = build_aws_services(load_settings(), session=session, clock=clock)
            previous = set_process_services(services)
            installed = True
            platform = build_platform(services, get_settings())
            found = Installation(session, services, platform, clock, sent)
            try:
                yield found
            finally:
                for extra in [*found._extra, services]:
                    extra.backend.close()  # type: ignore[attr-defined]
    finally:
        if installed:
            set_process_services(previous)
        get_settings.cache_clear()


def on_time(delay: int, seconds_to_start: float) -> bool:
    """Whether a message sent `seconds_to_start` before its run's start, with SQS's
    `delay` (whole seconds), becomes visible at the start or just before it: at most
    PREFETCH_LEAD_SECONDS early, plus the rounding to whole seconds (the worker holds an
    early message until the exact start). A run already due (or nearly) goes at once."""
    target = min(seconds_to_start - PREFETCH_LEAD_SECONDS, MAX_DELAY_SECONDS)
    if target <= 0:
        return delay == 0
    return target - 1 < delay <= target


def messages(found: list[dict[str, Any]]) -> list[FlowRunMessage]:
    return [parse_message(m["Body"]) for m in found]


def make_deployment(name: str, cron: str = "*/5 * * * *", **fields: Any) -> Deployment:
    """A stored deployment without uploading code (for scheduler tests)."""
    values: dict[str, Any] = {
        "name": name,
        "entrypoint": "flows.py:work",
        "flow_name": "work",
        "schedules": [{"cron": cron}],
        "bundle": BundleInfo(bucket="stratoflow-code", key="bundles/x.zip", sha256="0" * 64),
        "parameter_names": ("n",),
        "created": START,
        "updated": START,
        **fields,
    }
    return Deployment.model_validate(values)


def deploy_files(
    found: Installation, directory: Path, files: dict[str, str], pools: Iterable[str] = ()
) -> None:
    """Deploy a project made of `files` (name → text, dedented) from `directory`, after
    provisioning the default queue of each of `pools` (the installation has `default`)."""
    clients = AwsClients(found.session)
    for pool in pools:
        provision_work_queue(clients, found.platform.settings.queue_prefix, pool, "default")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(textwrap.dedent(text).lstrip())
    deploy_project(directory, platform=found.platform)
