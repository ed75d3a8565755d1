"""Secrets of automation actions live in AWS Secrets Manager, never in the state table.

Every worker role may read the state table (DESIGN §8, docs/security.md), so a webhook's
URL (a Slack incoming-webhook URL is itself the credential) or an `Authorization` header
stored in an automation item would be readable by any flow's code. Instead:

- a definition may name a secret explicitly, `url: {secret: NAME_OR_ARN, key: url}` (in
  the spirit of CloudFormation's `{{resolve:secretsmanager:NAME:SecretString:KEY}}`);
  without `key` the whole `SecretString` is the value;
- `AutomationSecrets.externalize` moves the inline values of a new automation (a
  `call-webhook` URL, its header values that are not templates) into one secret per
  automation, `<queue prefix>/automations/<automation id>` (a JSON object keyed by the
  field's path, e.g. `actions[0].headers.Authorization`), and stores references instead;
- `SecretReader` reads them when the action runs (GetSecretValue, cached `CACHE_SECONDS`
  per process).

A value is never logged nor put in an exception message: errors name the secret and the
key only. Notification targets (an SNS topic ARN) and templated bodies are not secrets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from stratoflow.exceptions import StratoflowError

if TYPE_CHECKING:
    from stratoflow.automations.models import Automation

CACHE_SECONDS = 300.0
"""How long a process reuses a secret it read: a changed secret is used within 5 minutes,
and a burst of firings makes one GetSecretValue call, not one per action."""
DELETION_RECOVERY_DAYS = 7
"""Deleting an automation schedules its secret's deletion (the shortest window AWS
allows), so a mistaken delete can still be undone with `aws secretsmanager
restore-secret`."""
ACTION_LISTS = ("actions", "actions_on_trigger", "actions_on_resolve")
INLINE = "<inline secret: move it to Secrets Manager>"
"""What the CLI shows instead of a value stored in the table by an earlier version."""


def secret_name(prefix: str, automation_id: str) -> str:
    """The secret of an automation, `<queue prefix>/automations/<id>` (the IAM grant of
    the automations function is this with `*` for the id: infra/permissions.py)."""
    return f"{prefix}/automations/{automation_id}"


class SecretError(StratoflowError):
    """A secret could not be stored or read (the message never holds its value)."""


class SecretRef(BaseModel):
    """A value kept in AWS Secrets Manager: `{secret: NAME_OR_ARN, key: KEY}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: str = Field(min_length=1, max_length=2048)
    """The secret's name or ARN."""
    key: str | None = Field(default=None, min_length=1)
    """A key of the secret's JSON object; None: the whole SecretString."""

    def describe(self) -> str:
        return f"secret {self.secret!r}" + (f" key {self.key!r}" if self.key else "")


def is_template(value: str) -> bool:
    """A header built from a template is computed from the event, not a secret: it stays
    in the definition (and is rendered when the action runs)."""
    return "{{" in value or "{%" in value


def secret_fields(automation: Automation) -> Iterator[tuple[str, str]]:
    """(path, value) of every inline secret-bearing field of `automation`'s actions."""
    for list_name in ACTION_LISTS:
        for index, action in enumerate(getattr(automation, list_name)):
            if action.type != "call-webhook":
                continue
            where = f"{list_name}[{index}]"
            if isinstance(action.url, str):
                yield f"{where}.url", action.url
            for name, value in action.headers.items():
                if isinstance(value, str) and not is_template(value):
                    yield f"{where}.headers.{name}", value


def secret_refs(automation: Automation) -> Iterator[SecretRef]:
    """Every reference of `automation`'s actions."""
    for list_name in ACTION_LISTS:
        for action in getattr(automation, list_name):
            if action.type == "call-webhook":
                for value in (action.url, *action.headers.values()):
                    if isinstance(value, SecretRef):
                        yield value


def has_inline_secrets(automation: Automation) -> bool:
    return next(secret_fields(automation), None) is not None


def redacted(definition: dict[str, Any]) -> dict[str, Any]:
    """A dumped definition (JSON mode) with inline secret values replaced by `INLINE`
    (references are shown as they are)."""
    result = dict(definition)
    for list_name in ACTION_LISTS:
        actions = []
        for dumped in result.get(list_name) or ():
            action = dict(dumped)
            if action.get("type") == "call-webhook":
                if isinstance(action.get("url"), str):
                    action["url"] = INLINE
                action["headers"] = {
                    k: INLINE if isinstance(v, str) and not is_template(v) else v
                    for k, v in (action.get("headers") or {}).items()
                }
            actions.append(action)
        result[list_name] = actions
    return result


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))


class AutomationSecrets:
    """Stores the secrets of automations, one secret per automation, with the caller's
    (the deployer's) credentials: secretsmanager CreateSecret, PutSecretValue,
    DeleteSecret on `arn:...:secret:<queue prefix>/automations/*`."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def name(self, automation_id: str) -> str:
        return secret_name(self.prefix, automation_id)

    def owns(self, automation: Automation) -> bool:
        """Whether `automation` uses its own secret (not only secrets a user named)."""
        assert automation.id is not None
        return any(ref.secret == self.name(automation.id) for ref in secret_refs(automation))

    def externalize(self, automation: Automation) -> Automation:
        """`automation` (with an id) with its inline secrets moved to its secret and
        replaced by references; unchanged when it has none."""
        values = dict(secret_fields(automation))
        if not values:
            return automation
        assert automation.id is not None
        name = self.put(automation.id, values)

        def moved(path: str, value: Any) -> Any:
            return SecretRef(secret=name, key=path) if path in values else value

        update: dict[str, Any] = {}
        for list_name in ACTION_LISTS:
            actions = []
            for index, action in enumerate(getattr(automation, list_name)):
                where = f"{list_name}[{index}]"
                if action.type == "call-webhook":
                    headers = {
                        k: moved(f"{where}.headers.{k}", v) for k, v in action.headers.items()
                    }
                    url = moved(f"{where}.url", action.url)
                    actions.append(action.model_copy(update={"url": url, "headers": headers}))
                else:
                    actions.append(action)
            update[list_name] = tuple(actions)
        return automation.model_copy(update=update)

    def put(self, automation_id: str, values: dict[str, str]) -> str:
        """Create (or overwrite) the automation's secret; returns its name."""
        name = self.name(automation_id)
        text = json.dumps(values)
        try:
            try:
                self.client.create_secret(
                    Name=name,
                    SecretString=text,
                    Description="stratoflow automation action secrets (webhook URL, headers)",
                )
            except ClientError as exc:
                if _code(exc) != "ResourceExistsException":
                    raise
                self.client.put_secret_value(SecretId=name, SecretString=text)
        except ClientError as exc:
            raise SecretError(
                f"Could not store the automation's webhook secrets in Secrets Manager as "
                f"{name!r} ({_code(exc)}). The deployer needs secretsmanager:CreateSecret and "
                f"PutSecretValue on secrets named {self.prefix}/automations/*; or reference "
                "an existing secret in the definition: url: {secret: NAME_OR_ARN, key: KEY}."
            ) from None
        return name

    def delete(self, automation_id: str, *, now: bool = False) -> None:
        """Schedule the deletion of the automation's secret (`now`: at once, for a secret
        no automation ever used); a missing secret is fine."""
        options: dict[str, Any] = (
            {"ForceDeleteWithoutRecovery": True}
            if now
            else {"RecoveryWindowInDays": DELETION_RECOVERY_DAYS}
        )
        try:
            self.client.delete_secret(SecretId=self.name(automation_id), **options)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise SecretError(
                    f"The automation was deleted but its secret {self.name(automation_id)!r} "
                    f"could not be ({_code(exc)}): delete it with `aws secretsmanager "
                    f"delete-secret --secret-id {self.name(automation_id)}`."
                ) from None


class SecretReader:
    """Reads referenced values (the automations function's role may GetSecretValue on
    `<queue prefix>/automations/*` only), cached `ttl` seconds per secret."""

    def __init__(
        self,
        client: Any,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, str]] = {}

    def value(self, ref: SecretRef) -> str:
        text = self._secret_string(ref)
        if ref.key is None:
            return text
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise SecretError(
                f"The {ref.describe()} is not a JSON object: store a JSON object in it, or "
                "leave out `key` to use the whole secret."
            )
        value = document.get(ref.key)
        if not isinstance(value, str):
            raise SecretError(
                f"The {ref.describe()} does not exist (or is not a string): add the key to "
                "the secret or fix the reference."
            )
        return value

    def _secret_string(self, ref: SecretRef) -> str:
        cached = self._cache.get(ref.secret)
        now = self.clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = self.client.get_secret_value(SecretId=ref.secret)
        except ClientError as exc:
            raise SecretError(
                f"The secret {ref.secret!r} could not be read ({_code(exc)}): check that it "
                "exists, and that its name starts with the installation's "
                "`<queue prefix>/automations/` (the only secrets the automations function may "
                "read) or that its role was granted secretsmanager:GetSecretValue on it."
            ) from None
        text = response.get("SecretString")
        if not isinstance(text, str):
            raise SecretError(f"The secret {ref.secret!r} has no SecretString: store text in it.")
        self._cache[ref.secret] = (now + self.ttl, text)
        return text
