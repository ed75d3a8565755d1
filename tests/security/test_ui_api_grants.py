"""What the web UI's API function may do (docs/security.md, "The web UI in AWS"), judged
by the policy evaluator (tests/security/_iam.py) against the synthesized stack: every
AWS call that the UI's actions make through the SDK, recorded on the emulator, is
allowed to the api role, and the role writes nothing else.

The actions are the SDK functions the pages call (as the CLI does): create a run of a
deployment, cancel, retry, resume a paused run, pause and resume a deployment and one of
its schedules, pause and resume a work queue, pause and resume an automation, read a
run's logs and the queues' depths, sign in (a session: create, read, delete) and read
the sign-in parameter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from stratoflow import resources, runs
from stratoflow.automations.api import create_automation, pause_automation, resume_automation
from stratoflow.automations.models import Automation, DoNothing, EventTrigger
from stratoflow.backends.aws import build_aws_services
from stratoflow.context import set_process_services
from stratoflow.deployments.deploy import set_deployment_paused, set_schedule_active
from stratoflow.deployments.runs import retry_flow_run, run_deployment
from stratoflow.flow_runs import resume_flow_run
from stratoflow.platform import get_platform
from stratoflow.settings import env_var, get_settings, load_settings
from stratoflow.states import Failed, Paused, Pending, Running
from stratoflow.ui import sign_in_settings
from stratoflow.ui.sessions import SessionStore
from stratoflow.ui.sign_in_settings import SignInParameter
from tests.integration._deploy_fixtures import Installation, deploy_files, installation  # noqa: F401
from tests.security._iam import (
    Request,
    is_allowed,
    only_resource,
    resolve,
    role_of,
    role_statements,
)

FULL_PREFIX = "stratoflow-full"
"""The synthesized stack's queue prefix (tests/infra/_cdk.py); the emulated installation
has the default names, mapped onto the stack's resources below."""

FLOWS = """
from stratoflow import flow

@flow
def work(n: int = 1) -> int:
    return n
"""
PROJECT = """
deployments:
  - name: nightly
    entrypoint: flows.py:work
    schedules:
      - cron: "0 3 * * *"
"""


@pytest.fixture(scope="module")
def api_role(full_template_json: dict[str, Any]) -> list[dict[str, Any]]:
    function = only_resource(
        full_template_json, "AWS::Lambda::Function", FunctionName=f"{FULL_PREFIX}-api"
    )
    return role_statements(full_template_json, role_of(function["Role"]))


class Arns:
    """The stack's ARN (as the evaluator names it) of what a recorded call touched."""

    def __init__(self, template: dict[str, Any], local_prefix: str) -> None:
        self.local_prefix = local_prefix
        found = template["Resources"]
        (self.table,) = [
            f"{{{k}.Arn}}" for k, r in found.items() if r["Type"] == "AWS::DynamoDB::Table"
        ]
        self.queues = {
            resolve(r["Properties"]["QueueName"]): f"{{{k}.Arn}}"
            for k, r in found.items()
            if r["Type"] == "AWS::SQS::Queue" and "QueueName" in r["Properties"]
        }
        (self.runs_logs,) = [
            f"{{{k}.Arn}}"
            for k, r in found.items()
            if r["Type"] == "AWS::Logs::LogGroup"
            and resolve(r["Properties"].get("LogGroupName", "")) == "/stratoflow/full/runs"
        ]

    def queue(self, name: str) -> str:
        return self.queues[FULL_PREFIX + name.removeprefix(self.local_prefix)]

    def parameter(self, name: str) -> str:
        stack_name = resources.ui_sign_in_parameter_name(FULL_PREFIX)
        assert name == resources.ui_sign_in_parameter_name(self.local_prefix)
        return f"arn:aws:ssm:us-east-1:123456789012:parameter{stack_name}"


def _pk(item: dict[str, Any]) -> str:
    return str(item[resources.PARTITION_KEY]["S"])


def requests_of(event: str, params: dict[str, Any], arns: Arns) -> list[Request]:
    """The IAM requests one API call makes (a transaction: one per item)."""
    _, service, operation = event.split(".")
    if service == "dynamodb":
        if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
            key = params.get("Item") or params["Key"]
            return [
                Request(f"dynamodb:{operation}", arns.table, {"dynamodb:LeadingKeys": [_pk(key)]})
            ]
        if operation == "Query":
            index = params.get("IndexName")
            resource = f"{arns.table}/index/{index}" if index else arns.table
            return [Request("dynamodb:Query", resource)]
        if operation == "TransactWriteItems":
            kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
            kinds["ConditionCheck"] = "ConditionCheckItem"
            return [
                Request(
                    f"dynamodb:{kinds[kind]}",
                    arns.table,
                    {"dynamodb:LeadingKeys": [_pk(body.get("Item") or body["Key"])]},
                )
                for item in params["TransactItems"]
                for kind, body in item.items()
            ]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            keys = [
                _pk(
                    request.get("PutRequest", {}).get("Item")
                    or request.get("DeleteRequest", {}).get("Key")
                    or request
                )
                for requests in params["RequestItems"].values()
                for request in (requests if isinstance(requests, list) else requests["Keys"])
            ]
            return [Request(f"dynamodb:{operation}", arns.table, {"dynamodb:LeadingKeys": keys})]
    if service == "sqs":
        url = params.get("QueueUrl")
        name = urlsplit(url).path.rsplit("/", 1)[-1] if url else params["QueueName"]
        return [Request(f"sqs:{operation}", arns.queue(name))]
    if service == "cloudwatch-logs" and operation == "GetLogEvents":
        return [Request("logs:GetLogEvents", arns.runs_logs)]
    if service == "ssm" and operation == "GetParameter":
        return [Request("ssm:GetParameter", arns.parameter(params["Name"]))]
    raise AssertionError(f"a call this test does not map to IAM: {event} {params}")


@pytest.fixture
def recorded(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every AWS call of the UI's actions, made through a fresh client set (clients copy
    the session's hooks when they are created)."""
    deploy_files(
        installation, tmp_path / "project", {"flows.py": FLOWS, "stratoflow.yaml": PROJECT}
    )
    made = create_automation(
        Automation(name="on failure", trigger=EventTrigger(expect=["x"]), actions=[DoNothing()])
    )
    prefix = installation.platform.settings.queue_prefix
    parameter = resources.ui_sign_in_parameter_name(prefix)
    installation.session.client("ssm").put_parameter(
        Name=parameter,
        Type="String",
        Value=SignInParameter(
            domain="https://x.auth.us-east-1.amazoncognito.com",
            client_id="c",
            issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X",
            public_url="https://d1.cloudfront.net",
        ).model_dump_json(),
    )
    monkeypatch.setenv(env_var("ui_sign_in_parameter"), parameter)
    get_settings.cache_clear()
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], event_name: str, **_: Any) -> None:
        calls.append((event_name, dict(params)))

    installation.session.events.register("provide-client-params", record)
    services = build_aws_services(
        load_settings(), session=installation.session, clock=installation.clock
    )
    previous = set_process_services(services)
    try:
        _act(services, made.id)
        yield calls
    finally:
        set_process_services(previous)
        get_settings.cache_clear()


def _act(services: Any, automation_id: str | None) -> None:
    platform = get_platform()
    backend = services.backend
    deployment = platform.deployments.get("nightly")

    def started(parameters: dict[str, int]) -> str:
        run = run_deployment("nightly", parameters, timeout=0)
        backend.set_flow_run_state(run.id, Pending())
        backend.set_flow_run_state(run.id, Running())
        return run.id

    runs.cancel_flow_run(started({"n": 1}))
    failed = started({"n": 2})
    backend.set_flow_run_state(failed, Failed())
    retry_flow_run(failed)
    paused = started({"n": 3})
    backend.set_flow_run_state(paused, Paused(pause_key="approval"))
    resume_flow_run(paused)
    set_deployment_paused("nightly", True)
    set_deployment_paused("nightly", False)
    set_schedule_active("nightly", deployment.schedules[0].key, False)
    set_schedule_active("nightly", deployment.schedules[0].key, True)
    platform.work_pools.set_queue_paused("default", "default", True)
    platform.work_pools.set_queue_paused("default", "default", False)
    assert automation_id is not None
    pause_automation(automation_id)
    resume_automation(automation_id)
    runs.read_logs(failed)
    platform.queues.depth("default", "default")
    store = SessionStore(backend.dynamodb, backend.table, services.clock)
    session_id, _ = store.create("ada@example.com", "operator", timedelta(hours=1))
    assert store.read(session_id) is not None
    store.delete(session_id)
    assert sign_in_settings.cognito_config() is not None


def test_every_call_of_the_uis_actions_is_allowed_to_the_api_role(
    recorded: list[tuple[str, dict[str, Any]]],
    api_role: list[dict[str, Any]],
    full_template_json: dict[str, Any],
    installation: Installation,
):
    arns = Arns(full_template_json, installation.platform.settings.queue_prefix)
    operations = {event.split(".", 1)[1] for event, _ in recorded}
    # The actions did reach each kind of call the role's statements are for.
    assert {
        "dynamodb.PutItem",
        "dynamodb.UpdateItem",
        "dynamodb.DeleteItem",
        "sqs.SendMessage",
        "sqs.GetQueueAttributes",
        "cloudwatch-logs.GetLogEvents",
        "ssm.GetParameter",
    } <= operations
    denied = [
        (event, request)
        for event, params in recorded
        for request in requests_of(event, params, arns)
        if not is_allowed(api_role, request)
    ]
    assert denied == []


@pytest.mark.parametrize(
    "key",
    [
        resources.block_key("secret", "db"),
        resources.concurrency_limit_key("db"),
        resources.concurrency_key("db"),
        resources.variable_key("x"),
        resources.artifact_key("a"),
        resources.event_key("e"),
        resources.cache_key("k"),
        resources.task_run_key(None, "t"),
        resources.worker_key("default", "w"),
        resources.automation_name_key("new"),
        resources.automation_bucket_key("a", "b") | {"pk": "AUTOMATIONDUE#a"},
        resources.SCHEDULER_CURSOR_KEY,
    ],
    ids=lambda key: key["pk"].split("#")[0],
)
def test_the_api_role_writes_nothing_else(
    key: dict[str, str], api_role: list[dict[str, Any]], full_template_json: dict[str, Any]
):
    table = Arns(full_template_json, "stratoflow").table
    for action in ("PutItem", "UpdateItem", "DeleteItem"):
        request = Request(f"dynamodb:{action}", table, {"dynamodb:LeadingKeys": [key["pk"]]})
        assert not is_allowed(api_role, request), (action, key)


def test_the_api_role_reaches_no_secret_no_bucket_and_no_dlq_send(
    api_role: list[dict[str, Any]], full_template_json: dict[str, Any]
):
    arns = Arns(full_template_json, "stratoflow")
    dlq = arns.queue("stratoflow-default-default-dlq")
    assert not is_allowed(api_role, Request("sqs:SendMessage", dlq))
    assert not is_allowed(
        api_role, Request("sqs:ReceiveMessage", arns.queue("stratoflow-default-default"))
    )
    assert not is_allowed(api_role, Request("sqs:SendMessage", arns.queue("stratoflow-tasks")))
    for action, resource in (
        ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"),
        ("s3:GetObject", "arn:aws:s3:::any/results/x"),
        ("dynamodb:Scan", arns.table),
        ("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/other"),
    ):
        assert not is_allowed(api_role, Request(action, resource)), action
