"""Finding 4 (docs/security.md, "Secrets stay in Secrets Manager"): a webhook's URL and
headers are secrets, and every worker may read the whole state table. The attack, on
moto: a worker reads every item it can (Scan of the table, the automations' index,
GetItem of the automation) and finds no secret value; IAM (judged by tests/security/
_iam.py on the synthesized template) denies every worker GetSecretValue on the secret,
which only the automations function's role may read. The webhook is still called with
the real URL and headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from typer.testing import CliRunner

from stratoflow import resources
from stratoflow.automations import (
    ActionExecutor,
    Automation,
    AutomationEngine,
    AutomationStore,
    CallWebhook,
    DoNothing,
    EventTrigger,
    SecretRef,
    WebhookRequest,
    automation_store,
    create_automation,
    delete_automation,
    read_automation_record,
)
from stratoflow.automations.secrets import INLINE
from stratoflow.backends.aws import AwsBackend, build_aws_services
from stratoflow.backends.aws.items import to_item
from stratoflow.cli import app
from stratoflow.cli import common as cli_common
from stratoflow.context import Services, set_process_services
from stratoflow.events.models import Event, Resource
from stratoflow.platform import Platform, build_platform
from stratoflow.resources import provision
from stratoflow.settings import get_settings, load_settings
from tests._time import anchor
from tests.security._iam import (
    Request,
    is_allowed,
    managed_policy_statements,
    only_resource,
    resolve,
    role_of,
    role_statements,
)

FAILED = "stratoflow.flow-run.Failed"
T0 = anchor()
TOKEN = "T0KEN-xoxb-4242-s3cr3t"
HEADER = "Bearer h3ad3r-s3cr3t-9876"
URL = f"https://hooks.slack.example/services/T01/B02/{TOKEN}"


@dataclass
class Installation:
    session: boto3.Session
    services: Services
    platform: Platform

    @property
    def backend(self) -> AwsBackend:
        assert isinstance(self.services.backend, AwsBackend)
        return self.services.backend

    @property
    def secretsmanager(self) -> Any:
        return self.backend.clients.secretsmanager

    def everything_a_worker_reads(self, automation_id: str) -> str:
        """What `dynamodb:GetItem/Query` (and, beyond what workers may, Scan) return."""
        client, table = self.backend.dynamodb, self.backend.table
        items = client.scan(TableName=table)["Items"]
        index = resources.BY_TIME
        items += client.query(
            TableName=table,
            IndexName=index.name,
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": index.partition_key},
            ExpressionAttributeValues=to_item({":p": resources.AUTOMATIONS_PARTITION}),
        )["Items"]
        items += client.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues=to_item(
                {":p": resources.automation_partition(automation_id)}
            ),
        )["Items"]
        item = client.get_item(
            TableName=table, Key=to_item(resources.automation_key(automation_id))
        )
        items.append(item["Item"])
        return json.dumps(items)


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[Installation]:
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "STRATOFLOW_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "STRATOFLOW_BACKEND": "aws",
            "STRATOFLOW_HOME": str(tmp_path / "home"),
            "STRATOFLOW_LOG_TO_CONSOLE": "false",
            "STRATOFLOW_WEBHOOK_ALLOWED_HOSTS": "hooks.slack.example",
        }.items():
            env.setenv(name, value)
        get_settings.cache_clear()
        try:
            with mock_aws():
                session = boto3.Session(region_name="us-east-1")
                provision(session)
                services = build_aws_services(load_settings(), session=session)
                previous = set_process_services(services)
                try:
                    yield Installation(session, services, build_platform(services, load_settings()))
                finally:
                    services.backend.close()  # type: ignore[attr-defined]
                    set_process_services(previous)
        finally:
            get_settings.cache_clear()


def webhook(name: str, *actions: Any) -> Automation:
    return Automation(name=name, trigger=EventTrigger(expect=[FAILED]), actions=actions)


def failed_event() -> Event:
    return Event(
        event=FAILED,
        occurred=T0 + timedelta(seconds=1),
        resource=Resource.of("stratoflow.flow-run.r1"),
    )


def engine(aws: Installation, sent: list[WebhookRequest]) -> AutomationEngine:
    def capture(request: WebhookRequest) -> int:
        sent.append(request)
        return 204

    store = AutomationStore(aws.backend.dynamodb, aws.backend.table)
    return AutomationEngine(
        aws.platform, store=store, actions=ActionExecutor(aws.platform, store, http=capture)
    )


def test_a_worker_reading_the_table_finds_no_webhook_secret(aws: Installation):
    made = create_automation(
        webhook(
            "page-on-call",
            CallWebhook(
                url=URL, headers={"Authorization": HEADER, "X-Name": "{{ automation.name }}"}
            ),
        ),
        store=automation_store(aws.platform),
    )
    assert made.id is not None
    seen = aws.everything_a_worker_reads(made.id)
    assert TOKEN not in seen and HEADER not in seen
    assert "h3ad3r" not in seen and "s3cr3t" not in seen
    # The item holds references to the automation's own secret, which holds the values.
    name = f"stratoflow/automations/{made.id}"
    action = read_automation_record(made.id).automation.actions[0]
    assert isinstance(action, CallWebhook)
    assert action.url == SecretRef(secret=name, key="actions[0].url")
    assert action.headers["Authorization"] == SecretRef(
        secret=name, key="actions[0].headers.Authorization"
    )
    assert action.headers["X-Name"] == "{{ automation.name }}"  # a template is no secret
    stored = json.loads(aws.secretsmanager.get_secret_value(SecretId=name)["SecretString"])
    assert stored == {"actions[0].url": URL, "actions[0].headers.Authorization": HEADER}


def test_the_webhook_is_still_called_with_the_real_url_and_headers(aws: Installation):
    made = create_automation(
        webhook(
            "page-on-call",
            CallWebhook(
                url=URL, headers={"Authorization": HEADER, "X-Name": "{{ automation.name }}"}
            ),
        ),
        store=automation_store(aws.platform),
    )
    sent: list[WebhookRequest] = []
    [firing] = engine(aws, sent).handle([failed_event()])
    assert firing.results[0].ok, firing.results
    [request] = sent
    assert request.url == URL
    assert request.headers["Authorization"] == HEADER
    assert request.headers["X-Name"] == "page-on-call"
    # What is recorded (detail, table) names the host, not the secret path.
    assert TOKEN not in firing.results[0].detail
    assert "hooks.slack.example" in firing.results[0].detail
    assert made.id is not None
    assert TOKEN not in aws.everything_a_worker_reads(made.id)


def test_an_unreadable_secret_fails_that_action_only_and_is_recorded(aws: Installation):
    missing = SecretRef(secret="stratoflow/automations/never-made", key="url")
    made = create_automation(
        webhook("broken", CallWebhook(url=missing), DoNothing()),
        store=automation_store(aws.platform),
    )
    assert made.id is not None
    [firing] = engine(aws, []).handle([failed_event()])
    failed, nothing = firing.results
    assert not failed.ok and nothing.ok
    assert "'stratoflow/automations/never-made' could not be read" in failed.detail
    assert "ResourceNotFoundException" in failed.detail
    record = read_automation_record(made.id)
    assert record.last_error is not None and "never-made" in record.last_error


def test_a_refused_secret_url_is_reported_without_its_secret_part(aws: Installation):
    url = f"https://elsewhere.example/hook/{TOKEN}"
    made = create_automation(
        webhook("off-list", CallWebhook(url=url)), store=automation_store(aws.platform)
    )
    [firing] = engine(aws, []).handle([failed_event()])
    [refused] = firing.results
    assert not refused.ok and "elsewhere.example" in refused.detail
    assert TOKEN not in refused.detail
    assert made.id is not None
    record = read_automation_record(made.id)
    assert record.last_error is not None and TOKEN not in record.last_error


def test_deleting_an_automation_schedules_its_secret_for_deletion(aws: Installation):
    made = create_automation(
        webhook("gone", CallWebhook(url=URL)), store=automation_store(aws.platform)
    )
    name = f"stratoflow/automations/{made.id}"
    delete_automation("gone", store=automation_store(aws.platform))
    assert "DeletedDate" in aws.secretsmanager.describe_secret(SecretId=name)
    with pytest.raises(ClientError):
        aws.secretsmanager.get_secret_value(SecretId=name)


def test_an_explicit_reference_is_used_and_never_deleted(aws: Installation):
    arn = aws.secretsmanager.create_secret(
        Name="stratoflow/automations/shared-slack", SecretString=URL
    )["ARN"]
    made = create_automation(
        {
            "name": "by-reference",
            "trigger": {"expect": FAILED},
            "actions": [{"type": "call-webhook", "url": {"secret": arn}}],
        },
        store=automation_store(aws.platform),
    )
    assert made.id is not None
    sent: list[WebhookRequest] = []
    engine(aws, sent).handle([failed_event()])
    assert [r.url for r in sent] == [URL]
    # No secret of its own was made, and deleting it leaves the user's secret alone.
    with pytest.raises(ClientError):
        aws.secretsmanager.describe_secret(SecretId=f"stratoflow/automations/{made.id}")
    delete_automation(made.id, store=automation_store(aws.platform))
    assert "DeletedDate" not in aws.secretsmanager.describe_secret(SecretId=arn)


def test_an_automation_stored_inline_still_runs_and_is_flagged(
    aws: Installation, monkeypatch: pytest.MonkeyPatch
):
    # The CLI's console keeps the width it had when first used: a row per line here.
    monkeypatch.setattr(cli_common.out, "_width", 200)
    # As an earlier version stored it: a store without Secrets Manager keeps values inline.
    legacy = AutomationStore(aws.backend.dynamodb, aws.backend.table)
    made = legacy.create(webhook("legacy", CallWebhook(url=URL, headers={"Authorization": HEADER})))
    sent: list[WebhookRequest] = []
    [firing] = engine(aws, sent).handle([failed_event()])
    assert firing.results[0].ok and [r.url for r in sent] == [URL]

    runner = CliRunner()
    listed = runner.invoke(app, ["automation", "ls"])
    assert listed.exit_code == 0, listed.output
    assert "inline secrets" in listed.output and "strato automation delete" in listed.output
    for command in (["ls", "--json"], ["inspect", "legacy", "--json"], ["inspect", "legacy"]):
        shown = runner.invoke(app, ["automation", *command])
        assert shown.exit_code == 0, shown.output
        assert TOKEN not in shown.output and HEADER not in shown.output
    document = json.loads(runner.invoke(app, ["automation", "inspect", "legacy", "--json"]).output)
    assert document["inline_secrets"] is True
    assert document["definition"]["actions"][0]["url"] == INLINE

    # The documented migration: delete, then create again; the values move out.
    assert runner.invoke(app, ["automation", "delete", "legacy"]).exit_code == 0
    definition = Path(get_settings().home) / "legacy.yaml"
    definition.parent.mkdir(parents=True, exist_ok=True)
    definition.write_text(
        "name: legacy\ntrigger: {expect: stratoflow.flow-run.Failed}\n"
        f"actions: [{{type: call-webhook, url: '{URL}', headers: {{Authorization: '{HEADER}'}}}}]\n"
    )
    created = runner.invoke(app, ["automation", "create", "-f", str(definition)])
    assert created.exit_code == 0, created.output
    new = read_automation_record("legacy")
    assert TOKEN not in aws.everything_a_worker_reads(new.id)
    shown = runner.invoke(app, ["automation", "inspect", "legacy", "--json"])
    document = json.loads(shown.output)
    assert document["inline_secrets"] is False
    assert document["definition"]["actions"][0]["url"] == {
        "secret": f"stratoflow/automations/{new.id}",
        "key": "actions[0].url",
    }
    assert made.id != new.id


# IAM: who may read the secret (the synthesized stack, judged by tests/security/_iam.py)


@pytest.fixture(scope="module")
def principals(full_template_json: dict[str, Any]) -> dict[str, list[list[dict[str, Any]]]]:
    """Each principal's statements; the on-prem worker: every on-prem policy (one per
    pool) of the template."""
    template = full_template_json

    def function_role(name: str) -> list[dict[str, Any]]:
        function = only_resource(
            template, "AWS::Lambda::Function", FunctionName=f"stratoflow-full-{name}"
        )
        return role_statements(template, role_of(function["Role"]))

    on_prem = [
        str(resolve(r["Properties"]["ManagedPolicyName"]))
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
        and "-on-prem-" in str(resolve(r["Properties"].get("ManagedPolicyName", "")))
    ]
    assert on_prem, "no on-prem worker policy in the full stack"
    task = only_resource(template, "AWS::ECS::TaskDefinition")
    return {
        "on-prem worker": [managed_policy_statements(template, name) for name in on_prem],
        "lambda worker": [function_role("lambda-worker")],
        "ecs task": [role_statements(template, role_of(task["TaskRoleArn"]))],
        "automations": [function_role("automations")],
    }


def secret_arn(template: dict[str, Any], name: str) -> str:
    prefix = resolve(template["Outputs"]["QueuePrefix"]["Value"])
    # Secrets Manager appends a random 6-character suffix to the name in the ARN.
    return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{prefix}/{name}-AbC123"


@pytest.mark.parametrize("worker", ["on-prem worker", "lambda worker", "ecs task"])
def test_no_worker_may_read_an_automation_secret(
    principals: dict[str, list[list[dict[str, Any]]]],
    full_template_json: dict[str, Any],
    worker: str,
):
    arn = secret_arn(full_template_json, "automations/8d5e8c0e-5c1b-4a8e-9a57-0f1f7a3c2b10")
    for statements in principals[worker]:
        for action in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"):
            assert not is_allowed(statements, Request(action, arn)), (worker, action)


def test_the_automations_role_reads_its_installations_automation_secretsonly_resource(
    principals: dict[str, list[list[dict[str, Any]]]], full_template_json: dict[str, Any]
):
    [statements] = principals["automations"]
    own = secret_arn(full_template_json, "automations/8d5e8c0e-5c1b-4a8e-9a57-0f1f7a3c2b10")
    assert is_allowed(statements, Request("secretsmanager:GetSecretValue", own))
    for action in ("secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret"):
        assert not is_allowed(statements, Request(action, own)), action
    other = secret_arn(full_template_json, "database-password")
    assert not is_allowed(statements, Request("secretsmanager:GetSecretValue", other))
    foreign = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/automations/x-AbC123"
    assert not is_allowed(statements, Request("secretsmanager:GetSecretValue", foreign))
