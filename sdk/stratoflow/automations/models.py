"""Automation definitions: triggers, actions and the automation itself (as Prefect 3's).

Every model is frozen and rejects unknown fields; triggers and actions are discriminated
unions on `type`, so a definition reads the same in Python, YAML and JSON.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from stratoflow.automations.secrets import SecretRef
from stratoflow.automations.templates import check_template
from stratoflow.states import StateType

LabelPatterns = dict[str, str | list[str]]
"""Resource label -> pattern, or a list of patterns (any of them); `*` is a wildcard."""


class _Model(BaseModel):
    # Validators are built on first use (`defer_build`, which also resolves the forward
    # references of the recursive triggers then), not at import: the automations Lambda of
    # an installation without automations never validates one (bench/cold_start.py).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


def _listed(value: Any) -> Any:
    """`expect: stratoflow.flow-run.Failed` is `expect: [stratoflow.flow-run.Failed]`."""
    return [value] if isinstance(value, str) else value


# Triggers


class EventTrigger(_Model):
    """Counts the events that match, per `for_each` bucket, and fires on a threshold
    (Reactive) or on its absence within a window (Proactive)."""

    type: Literal["event"] = "event"
    match: LabelPatterns = Field(default_factory=dict)
    """Labels of the event's resource, e.g. `stratoflow.resource.id: stratoflow.flow-run.*`."""
    match_related: LabelPatterns | list[LabelPatterns] = Field(default_factory=dict)
    """Labels one related resource must have (a list: each is met by some related resource)."""
    after: tuple[str, ...] = ()
    """Event names that must be seen (in the bucket) before `expect` events count."""
    expect: tuple[str, ...] = ()
    """Event names that count; empty means every matching event."""
    for_each: tuple[str, ...] = ()
    """Labels whose values split counting into buckets (`related:<role>:<label>` reads a
    related resource)."""
    posture: Literal["Reactive", "Proactive"] = "Reactive"
    threshold: int = Field(default=1, ge=1)
    within: float = Field(default=0, ge=0)
    """Seconds. Reactive: the window the `threshold` events must fall in (0: no window).
    Proactive: how long to wait for them (must be > 0)."""

    @field_validator("after", "expect", "for_each", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _listed(value)

    @field_validator("match", mode="after")
    @classmethod
    def _patterns(cls, value: LabelPatterns) -> LabelPatterns:
        for label, patterns in value.items():
            if isinstance(patterns, list) and not patterns:
                raise ValueError(f"label {label!r} needs at least one pattern")
        return value

    @model_validator(mode="after")
    def _proactive_window(self) -> EventTrigger:
        if self.posture == "Proactive" and self.within <= 0:
            raise ValueError("a Proactive trigger needs `within` > 0 (the seconds to wait)")
        return self


def _some_triggers(cls: type[BaseModel], value: tuple[Any, ...]) -> tuple[Any, ...]:
    if not value:
        raise ValueError("list at least one trigger")
    return value


class CompoundTrigger(_Model):
    """Fires when `require` of its triggers ("any", "all" or a number) fired within
    `within` seconds of each other (0: no limit)."""

    type: Literal["compound"] = "compound"
    require: int | Literal["any", "all"] = "all"
    """How many of `triggers` must fire: "any", "all" or a number."""
    triggers: tuple[Trigger, ...]
    within: float = Field(default=0, ge=0)

    _some = field_validator("triggers")(_some_triggers)

    @field_validator("require", mode="before")
    @classmethod
    def _require_value(cls, value: Any) -> Any:
        if value in ("any", "all") or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise ValueError(f"require must be 'any', 'all' or a number, not {value!r}")

    @model_validator(mode="after")
    def _require(self) -> CompoundTrigger:
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(
                f"require must be 'any', 'all' or between 1 and {len(self.triggers)} "
                f"(the number of triggers), not {self.require}"
            )
        return self

    @property
    def required(self) -> int:
        if isinstance(self.require, int):
            return self.require
        return 1 if self.require == "any" else len(self.triggers)


class SequenceTrigger(_Model):
    """Fires when its triggers fired in order, the last within `within` seconds of the
    first (0: no limit)."""

    type: Literal["sequence"] = "sequence"
    triggers: tuple[Trigger, ...]
    within: float = Field(default=0, ge=0)

    _some = field_validator("triggers")(_some_triggers)


def _tag(default: str | None) -> Callable[[Any], str | None]:
    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            found = value.get("type", default)
            return found if isinstance(found, str) else None
        return getattr(value, "type", None)

    return tag


TRIGGER_TYPES = ("event", "compound", "sequence")
Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[CompoundTrigger, Tag("compound")]
    | Annotated[SequenceTrigger, Tag("sequence")],
    Discriminator(
        _tag("event"),
        custom_error_type="trigger_type",
        custom_error_message=f"`type` must be one of {', '.join(TRIGGER_TYPES)} (default: event)",
    ),
]
CompositeTrigger = CompoundTrigger | SequenceTrigger


# Actions


class _Templated(_Model):
    """Checks the Jinja syntax of every template field at definition time."""

    templated: ClassVar[tuple[str, ...]] = ()
    """The fields rendered as Jinja templates when the action runs."""

    @model_validator(mode="after")
    def _check_templates(self) -> _Templated:
        for name in self.templated:
            _check_templates_in(getattr(self, name), name)
        return self


def _check_templates_in(value: Any, where: str) -> None:
    if isinstance(value, str):
        check_template(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_templates_in(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_templates_in(item, f"{where}[{index}]")


class RunDeployment(_Templated):
    """Create a run of a deployment (default: the triggering event's related deployment)."""

    type: Literal["run-deployment"] = "run-deployment"
    deployment: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Templated: a string that is one `{{ expression }}` keeps the expression's type."""
    tags: tuple[str, ...] = ()
    flow_run_name: str | None = None
    templated = ("deployment", "parameters", "flow_run_name")


class CancelFlowRun(_Templated):
    """Cancel the triggering flow run (or `flow_run_id`)."""

    type: Literal["cancel-flow-run"] = "cancel-flow-run"
    flow_run_id: str | None = None
    templated = ("flow_run_id",)


class ResumeFlowRun(_Templated):
    """Resume the triggering paused flow run (or `flow_run_id`), with `run_input` when it
    waits for input (checked against what it waits for)."""

    type: Literal["resume-flow-run"] = "resume-flow-run"
    flow_run_id: str | None = None
    run_input: dict[str, Any] | None = None
    """Templated as run-deployment's parameters."""
    templated = ("flow_run_id", "run_input")


class ChangeFlowRunState(_Templated):
    """Set the state of the triggering flow run (or `flow_run_id`)."""

    type: Literal["change-flow-run-state"] = "change-flow-run-state"
    state: StateType
    name: str | None = None
    """The state's name (default: the type's, e.g. `Failed`)."""
    message: str | None = None
    force: bool = False
    """Allow transitions the table forbids, such as leaving a final state."""
    flow_run_id: str | None = None
    templated = ("name", "message", "flow_run_id")

    @field_validator("state", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class PauseDeployment(_Templated):
    """Pause a deployment (default: the triggering event's related deployment)."""

    type: Literal["pause-deployment"] = "pause-deployment"
    deployment: str | None = None
    templated = ("deployment",)


class ResumeDeployment(_Templated):
    type: Literal["resume-deployment"] = "resume-deployment"
    deployment: str | None = None
    templated = ("deployment",)


class PauseWorkQueue(_Model):
    """Pause a work queue (default: the triggering event's related work queue)."""

    type: Literal["pause-work-queue"] = "pause-work-queue"
    work_pool: str | None = None
    work_queue: str | None = None


class ResumeWorkQueue(_Model):
    type: Literal["resume-work-queue"] = "resume-work-queue"
    work_pool: str | None = None
    work_queue: str | None = None


class PauseAutomation(_Model):
    """Pause an automation, by id or name (default: this one)."""

    type: Literal["pause-automation"] = "pause-automation"
    automation: str | None = None


class ResumeAutomation(_Model):
    type: Literal["resume-automation"] = "resume-automation"
    automation: str | None = None


DEFAULT_SUBJECT = "stratoflow automation {{ automation.name }}: {{ firing.state }}"
DEFAULT_BODY = (
    "Automation {{ automation.name }} {{ firing.state }} at {{ firing.fired_at }}."
    "{% if event %}\nEvent: {{ event.event }} on {{ event.resource.id }}{% endif %}"
    "{% if flow_run %}\nFlow run: {{ flow_run.name }} ({{ flow_run.id }}) is "
    "{{ flow_run.state_name }}{% if flow_run.state_message %}: "
    "{{ flow_run.state_message }}{% endif %}{% endif %}"
)


class SendNotification(_Templated):
    """Publish a message to an SNS topic."""

    type: Literal["send-notification"] = "send-notification"
    topic_arn: str = Field(pattern=r"^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$")
    subject: str = DEFAULT_SUBJECT
    body: str = DEFAULT_BODY
    templated = ("subject", "body")


MAX_WEBHOOK_TIMEOUT = 30.0


class CallWebhook(_Templated):
    """An HTTP request to a URL whose host is in STRATOFLOW_WEBHOOK_ALLOWED_HOSTS."""

    type: Literal["call-webhook"] = "call-webhook"
    url: str | SecretRef
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    headers: dict[str, str | SecretRef] = Field(default_factory=dict)
    body: str = "{{ payload | tojson }}"
    """Templated; the default is a JSON document of the automation, firing and event."""
    timeout: float = Field(default=10.0, gt=0, le=MAX_WEBHOOK_TIMEOUT)
    templated = ("headers", "body")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | SecretRef) -> str | SecretRef:
        parts = urlsplit(value) if isinstance(value, str) else None  # a secret's: when read
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
        return value


class DoNothing(_Model):
    type: Literal["do-nothing"] = "do-nothing"


_ACTIONS: tuple[type[BaseModel], ...] = (
    RunDeployment,
    CancelFlowRun,
    ResumeFlowRun,
    ChangeFlowRunState,
    PauseDeployment,
    ResumeDeployment,
    PauseWorkQueue,
    ResumeWorkQueue,
    PauseAutomation,
    ResumeAutomation,
    SendNotification,
    CallWebhook,
    DoNothing,
)
ACTION_TYPES = tuple(str(model.model_fields["type"].default) for model in _ACTIONS)
Action = Annotated[
    Annotated[RunDeployment, Tag("run-deployment")]
    | Annotated[CancelFlowRun, Tag("cancel-flow-run")]
    | Annotated[ResumeFlowRun, Tag("resume-flow-run")]
    | Annotated[ChangeFlowRunState, Tag("change-flow-run-state")]
    | Annotated[PauseDeployment, Tag("pause-deployment")]
    | Annotated[ResumeDeployment, Tag("resume-deployment")]
    | Annotated[PauseWorkQueue, Tag("pause-work-queue")]
    | Annotated[ResumeWorkQueue, Tag("resume-work-queue")]
    | Annotated[PauseAutomation, Tag("pause-automation")]
    | Annotated[ResumeAutomation, Tag("resume-automation")]
    | Annotated[SendNotification, Tag("send-notification")]
    | Annotated[CallWebhook, Tag("call-webhook")]
    | Annotated[DoNothing, Tag("do-nothing")],
    Discriminator(
        _tag(None),
        custom_error_type="action_type",
        custom_error_message=f"`type` must be one of {', '.join(ACTION_TYPES)}",
    ),
]


# The automation

_NAME = re.compile(r"^[^\x00-\x1f]{1,128}$")


class Automation(_Model):
    """A trigger and what to do when it fires (and, for a Proactive trigger, when it
    resolves). `id` is given by `create_automation` unless set."""

    id: str | None = None
    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    enabled: bool = True
    trigger: Trigger
    actions: tuple[Action, ...] = ()
    actions_on_trigger: tuple[Action, ...] = ()
    actions_on_resolve: tuple[Action, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value != value.strip() or not _NAME.match(value):
            raise ValueError(
                "a name is 1 to 128 characters, without control characters or "
                "leading/trailing spaces"
            )
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None:
            uuid.UUID(value)  # a ValueError names the field
        return value

    @model_validator(mode="after")
    def _actions(self) -> Automation:
        if not (self.actions or self.actions_on_trigger or self.actions_on_resolve):
            raise ValueError(
                "an automation needs at least one action (`actions`, `actions_on_trigger` "
                "or `actions_on_resolve`; `type: do-nothing` records firings only)"
            )
        if self.actions_on_resolve and not (
            isinstance(self.trigger, EventTrigger) and self.trigger.posture == "Proactive"
        ):
            raise ValueError(
                "actions_on_resolve needs a Proactive event trigger: only its buckets resolve"
            )
        return self

    def with_id(self) -> Automation:
        """This automation with an id (a new one when it has none)."""
        return self if self.id else self.model_copy(update={"id": str(uuid.uuid4())})


def trigger_paths(trigger: Trigger, path: str = "trigger") -> list[tuple[str, Trigger]]:
    """Every trigger of the tree with its path (`trigger`, `trigger.triggers[0]`, ...),
    parents before their children."""
    found: list[tuple[str, Trigger]] = [(path, trigger)]
    if isinstance(trigger, CompoundTrigger | SequenceTrigger):
        for index, child in enumerate(trigger.triggers):
            found += trigger_paths(child, f"{path}.triggers[{index}]")
    return found


def parent_path(path: str) -> tuple[str, int] | None:
    """`trigger.triggers[2]` -> (`trigger`, 2); None for the root."""
    head, sep, tail = path.rpartition(".triggers[")
    if not sep:
        return None
    return head, int(tail.rstrip("]"))


def has_proactive(trigger: Trigger) -> bool:
    return any(
        isinstance(t, EventTrigger) and t.posture == "Proactive" for _, t in trigger_paths(trigger)
    )
