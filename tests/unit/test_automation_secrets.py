"""Secret references of automation actions (stratoflow.automations.secrets): how a
definition spells them, how inline values are moved out, how they are read (cached), and
that no error message carries a value. AWS is a small fake client here; the moto tests
are tests/security/test_automation_secrets.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from stratoflow.automations import (
    ActionError,
    ActionExecutor,
    Automation,
    CallWebhook,
    DoNothing,
    EventTrigger,
    MemoryAutomationStore,
    SecretRef,
    SendNotification,
    WebhookRequest,
    parse_automations,
)
from stratoflow.automations.actions import ActionContext
from stratoflow.automations.buckets import Fire
from stratoflow.automations.secrets import (
    INLINE,
    AutomationSecrets,
    SecretError,
    SecretReader,
    has_inline_secrets,
    redacted,
)
from stratoflow.settings import Settings

SECRET = "xoxb-very-s3cr3t"
NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)  # a fixed moment: nothing here expires


def error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "Op")


class FakeSecrets:
    """Secrets Manager's calls used by secrets.py, in a dict."""

    def __init__(self, **secrets: str) -> None:
        self.secrets = dict(secrets)
        self.reads = 0
        self.deleted: list[tuple[str, dict[str, Any]]] = []

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.reads += 1
        if SecretId not in self.secrets:
            raise error("ResourceNotFoundException")
        return {"SecretString": self.secrets[SecretId]}

    def create_secret(self, Name: str, SecretString: str, **_: Any) -> None:
        if Name in self.secrets:
            raise error("ResourceExistsException")
        self.secrets[Name] = SecretString

    def put_secret_value(self, SecretId: str, SecretString: str) -> None:
        self.secrets[SecretId] = SecretString

    def delete_secret(self, SecretId: str, **options: Any) -> None:
        self.deleted.append((SecretId, options))


def automation(*actions: Any) -> Automation:
    return Automation(
        id="8d5e8c0e-5c1b-4a8e-9a57-0f1f7a3c2b10",
        name="a",
        trigger=EventTrigger(expect=["x"]),
        actions=actions,
    )


def test_a_definition_references_a_secret_by_name_or_arn_with_an_optional_key():
    [parsed] = parse_automations(
        {
            "name": "ref",
            "trigger": {"expect": "x"},
            "actions": [
                {
                    "type": "call-webhook",
                    "url": {
                        "secret": "arn:aws:secretsmanager:eu-west-1:1:secret:s-AbC",
                        "key": "u",
                    },
                    "headers": {"Authorization": {"secret": "team/slack"}, "X": "{{ event.id }}"},
                }
            ],
        }
    )
    [action] = parsed.actions
    assert isinstance(action, CallWebhook)
    assert action.url == SecretRef(
        secret="arn:aws:secretsmanager:eu-west-1:1:secret:s-AbC", key="u"
    )
    assert action.headers["Authorization"] == SecretRef(secret="team/slack")
    assert not has_inline_secrets(parsed)
    with pytest.raises(ValidationError, match="secret"):
        CallWebhook.model_validate({"url": {"secret": "s", "field": "u"}})


def test_inline_values_move_to_one_secret_per_automation():
    client = FakeSecrets()
    vault = AutomationSecrets(client, "stratoflow-prod")
    original = automation(
        CallWebhook(url="https://h.example/T/" + SECRET, headers={"A": SECRET, "B": "{{ x }}"}),
        SendNotification(topic_arn="arn:aws:sns:eu-west-1:123456789012:t"),  # not a secret
    )
    assert has_inline_secrets(original)
    moved = vault.externalize(original)
    name = "stratoflow-prod/automations/8d5e8c0e-5c1b-4a8e-9a57-0f1f7a3c2b10"
    assert SECRET not in moved.model_dump_json()
    assert json.loads(client.secrets[name]) == {
        "actions[0].url": "https://h.example/T/" + SECRET,
        "actions[0].headers.A": SECRET,
    }
    webhook = moved.actions[0]
    assert isinstance(webhook, CallWebhook)
    assert webhook.headers["B"] == "{{ x }}" and moved.actions[1] == original.actions[1]
    assert vault.owns(moved) and not has_inline_secrets(moved)
    # Again (create after a failed attempt): the secret is overwritten, not duplicated.
    vault.externalize(original)
    assert list(client.secrets) == [name]
    assert vault.externalize(automation(DoNothing())) == automation(DoNothing())


def test_storing_without_permission_says_what_the_deployer_needs():
    class Denied(FakeSecrets):
        def create_secret(self, Name: str, SecretString: str, **_: Any) -> None:
            raise error("AccessDeniedException")

    with pytest.raises(SecretError) as raised:
        AutomationSecrets(Denied(), "p").externalize(
            automation(CallWebhook(url="https://h/" + SECRET))
        )
    message = str(raised.value)
    assert "AccessDeniedException" in message and "secretsmanager:CreateSecret" in message
    assert "p/automations/*" in message and SECRET not in message


def test_deleting_schedules_deletion_and_a_missing_secret_is_fine():
    client = FakeSecrets()
    vault = AutomationSecrets(client, "p")
    vault.delete("i")
    vault.delete("j", now=True)
    assert client.deleted == [
        ("p/automations/i", {"RecoveryWindowInDays": 7}),
        ("p/automations/j", {"ForceDeleteWithoutRecovery": True}),
    ]

    class Gone(FakeSecrets):
        def delete_secret(self, SecretId: str, **options: Any) -> None:
            raise error("ResourceNotFoundException")

    AutomationSecrets(Gone(), "p").delete("i")


def test_reads_are_cached_for_the_ttl():
    clock = [100.0]
    client = FakeSecrets(s=json.dumps({"url": "https://h/" + SECRET}))
    reader = SecretReader(client, ttl=300, clock=lambda: clock[0])
    ref = SecretRef(secret="s", key="url")
    assert reader.value(ref) == "https://h/" + SECRET
    clock[0] += 299
    assert reader.value(ref) == "https://h/" + SECRET and client.reads == 1
    clock[0] += 2
    client.secrets["s"] = json.dumps({"url": "https://h/rotated"})
    assert reader.value(ref) == "https://h/rotated" and client.reads == 2


@pytest.mark.parametrize(
    ("stored", "ref", "expected"),
    [
        (None, SecretRef(secret="s"), "'s' could not be read (ResourceNotFoundException)"),
        (SECRET, SecretRef(secret="s", key="url"), "is not a JSON object"),
        (json.dumps({"other": SECRET}), SecretRef(secret="s", key="url"), "key 'url' does not"),
        (json.dumps({"url": [SECRET]}), SecretRef(secret="s", key="url"), "is not a string"),
    ],
)
def test_read_errors_name_the_secret_and_key_never_the_value(
    stored: str | None, ref: SecretRef, expected: str
):
    client = FakeSecrets(**({"s": stored} if stored is not None else {}))
    with pytest.raises(SecretError) as raised:
        SecretReader(client).value(ref)
    assert expected in str(raised.value) and SECRET not in str(raised.value)


def test_the_cli_view_hides_inline_values_and_shows_references():
    inline = automation(
        CallWebhook(url="https://h/" + SECRET, headers={"A": SECRET, "B": "{{ x }}"}),
        CallWebhook(url=SecretRef(secret="s", key="k")),
    )
    shown = redacted(inline.model_dump(mode="json"))
    assert SECRET not in json.dumps(shown)
    first, second = shown["actions"]
    assert first["url"] == INLINE and first["headers"] == {"A": INLINE, "B": "{{ x }}"}
    assert second["url"] == {"secret": "s", "key": "k"}


def run_webhook(action: CallWebhook, http: Any, **secrets: str) -> str:
    settings = Settings(webhook_allowed_hosts="h.example")
    executor = ActionExecutor(
        None,
        MemoryAutomationStore(),
        http=http,
        settings=settings,
        secrets=SecretReader(FakeSecrets(**secrets)),
    )
    fire = Fire(trigger="trigger", bucket="", window="w", state="triggered", at=NOW)
    context = ActionContext(automation=automation(action), fire=fire, event=None, now=NOW)
    return executor.run(action, context, "actions[0]")


def test_the_sender_gets_the_values_and_its_errors_do_not():
    sent: list[WebhookRequest] = []

    def ok(request: WebhookRequest) -> int:
        sent.append(request)
        return 200

    refs = {"url": "https://h.example/hook/" + SECRET, "auth": "Bearer " + SECRET}
    action = CallWebhook(
        url=SecretRef(secret="s", key="url"),
        headers={"Authorization": SecretRef(secret="s", key="auth")},
        body="",
    )
    detail = run_webhook(action, ok, s=json.dumps(refs))
    assert sent[0].url == refs["url"] and sent[0].headers == {"Authorization": refs["auth"]}
    assert detail == "POST https://h.example/<secret>: HTTP 200"

    def leaky(request: WebhookRequest) -> int:
        # http.client puts a header value it refuses in its message.
        raise ValueError(f"Invalid header value {request.headers['Authorization']!r} {request.url}")

    with pytest.raises(ActionError) as raised:
        run_webhook(action, leaky, s=json.dumps(refs))
    assert SECRET not in str(raised.value) and "https://h.example/<secret>" in str(raised.value)
