"""What automations do when they fire: one executor per action type.

`ActionExecutor` is the default runner. Its HTTP sender and SNS client can be replaced
(tests); by default webhooks go through `webhooks.WebhookSender` (public addresses only,
the address checked is the one connected to, no redirects, a timeout) and
notifications through a boto3 SNS client made from the platform's session.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from stratoflow.automations.buckets import Fire, iso
from stratoflow.automations.models import (
    Action,
    Automation,
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    PauseAutomation,
    PauseDeployment,
    PauseWorkQueue,
    ResumeAutomation,
    ResumeDeployment,
    ResumeFlowRun,
    ResumeWorkQueue,
    RunDeployment,
    SendNotification,
)
from stratoflow.automations.secrets import SecretReader, SecretRef
from stratoflow.automations.targets import (
    flow_run_document,
    triggering_deployment,
    triggering_flow_run_id,
    triggering_work_queue,
)
from stratoflow.automations.templates import event_view, render, render_value
from stratoflow.automations.webhooks import (
    ActionError,
    HttpSender,
    WebhookRequest,
    check_url,
    default_sender,
)
from stratoflow.events.models import Event
from stratoflow.exceptions import StratoflowError
from stratoflow.states import State, StateType

if TYPE_CHECKING:
    from stratoflow.automations.store import BaseAutomationStore
    from stratoflow.platform import Platform
    from stratoflow.settings import Settings

SUBJECT_LIMIT = 100
"""SNS subjects: at most 100 printable ASCII characters, one line."""


@dataclass(frozen=True)
class ActionContext:
    """What an action knows about the firing it runs for."""

    automation: Automation
    fire: Fire
    event: Event | None
    now: datetime
    cache: dict[str, Any] = field(default_factory=dict, compare=False)
    """The template scope, built once per firing by the executor."""


class ActionRunner(Protocol):
    def run(self, action: Action, context: ActionContext, label: str) -> str:
        """Do `action` (`label` is e.g. `actions[0]`); return what was done, in one line.
        Raise to report a failure."""


class SnsPublisher(Protocol):
    def publish(self, **kwargs: Any) -> Any: ...


class ActionExecutor:
    """Runs actions against the platform (deployments, runs, queues, SNS, webhooks)."""

    def __init__(
        self,
        platform: Platform | None,
        store: BaseAutomationStore,
        *,
        http: HttpSender | None = None,
        sns: SnsPublisher | None = None,
        settings: Settings | None = None,
        secrets: SecretReader | None = None,
    ) -> None:
        self.platform = platform
        self.store = store
        self.http = http or default_sender
        self._sns = sns
        self._settings = settings
        self._secrets = secrets

    @property
    def settings(self) -> Settings:
        if self._settings is not None:
            return self._settings
        if self.platform is not None:
            return self.platform.settings
        from stratoflow.settings import get_settings

        return get_settings()

    @property
    def sns(self) -> SnsPublisher:
        if self._sns is None:
            clients = self._platform("send-notification").backend.clients
            self._sns = clients.session.client(
                "sns",
                endpoint_url=clients.config.endpoint_url,
                config=clients.config.botocore_config(),
            )
        assert self._sns is not None
        return self._sns

    @property
    def secrets(self) -> SecretReader:
        """Reads webhook secrets; one reader (and its cache) per executor."""
        if self._secrets is None:
            clients = self._platform("a secret reference").backend.clients
            self._secrets = SecretReader(clients.secretsmanager)
        return self._secrets

    def _platform(self, what: str) -> Platform:
        if self.platform is None:
            raise ActionError(f"{what} needs the AWS backend (STRATOFLOW_BACKEND=aws).")
        return self.platform

    def run(self, action: Action, context: ActionContext, label: str) -> str:
        handler = getattr(self, "_" + action.type.replace("-", "_"))
        return str(handler(action, context, label))

    # Templates

    def scope(self, context: ActionContext) -> dict[str, Any]:
        if not context.cache:
            flow_run = self._flow_run(triggering_flow_run_id(context.event))
            firing = {
                "state": context.fire.state,
                "window": context.fire.window,
                "bucket": context.fire.bucket,
                "trigger": context.fire.trigger,
                "fired_at": iso(context.fire.at),
            }
            automation = context.automation
            context.cache.update(
                event=event_view(context.event) if context.event else None,
                automation=automation,
                flow_run=flow_run,
                firing=firing,
                payload={
                    "automation": {
                        "id": automation.id,
                        "name": automation.name,
                        "description": automation.description,
                    },
                    "firing": firing,
                    "event": context.event.model_dump(mode="json") if context.event else None,
                    "flow_run": flow_run,
                },
            )
        return context.cache

    def _flow_run(self, flow_run_id: str | None) -> dict[str, Any] | None:
        if flow_run_id is None or self.platform is None:
            return None
        try:
            return flow_run_document(self.platform.services.backend.read_flow_run(flow_run_id))
        except StratoflowError:
            return None

    def _text(self, template: str | None, context: ActionContext) -> str | None:
        return None if template is None else render(template, self.scope(context))

    def _flow_run_id(self, given: str | None, context: ActionContext, what: str) -> str:
        flow_run_id = self._text(given, context) or triggering_flow_run_id(context.event)
        if not flow_run_id:
            raise ActionError(
                f"{what}: the triggering event is not about a flow run; set flow_run_id."
            )
        return flow_run_id

    def _deployment(self, given: str | None, context: ActionContext, what: str) -> str:
        name = self._text(given, context) or triggering_deployment(context.event)
        if not name:
            raise ActionError(
                f"{what}: the triggering event has no related deployment; set deployment."
            )
        return name

    # Actions

    def _run_deployment(self, action: RunDeployment, context: ActionContext, label: str) -> str:
        from stratoflow.deployments.runs import schedule_and_send

        platform = self._platform(action.type)
        name = self._deployment(action.deployment, context, action.type)
        deployment = platform.deployments.get(name)
        scope = self.scope(context)
        run, created = schedule_and_send(
            platform,
            deployment,
            scheduled_time=platform.services.clock.now(),
            parameters=render_value(action.parameters, scope),
            flow_run_name=self._text(action.flow_run_name, context),
            tags=action.tags,
            # A firing runs its actions once; the key makes a repeat create no second run.
            idempotency_key=f"automation:{context.automation.id}:{context.fire.id}:{label}",
        )
        return f"flow run {run.name!r} ({run.id}) of deployment {name!r}" + (
            "" if created else " existed already"
        )

    def _cancel_flow_run(self, action: CancelFlowRun, context: ActionContext, label: str) -> str:
        from stratoflow.engine.flow_engine import request_cancellation

        platform = self._platform(action.type)
        flow_run_id = self._flow_run_id(action.flow_run_id, context, action.type)
        run = platform.services.backend.read_flow_run(flow_run_id)
        if run.state is not None and (run.state.is_final() or run.state.is_cancelling()):
            return f"flow run {flow_run_id} is {run.state.name} already"
        state = request_cancellation(flow_run_id, platform.services)
        return f"flow run {flow_run_id} is {state.name}"

    def _resume_flow_run(self, action: ResumeFlowRun, context: ActionContext, label: str) -> str:
        from stratoflow.flow_runs import resume_flow_run

        platform = self._platform(action.type)
        flow_run_id = self._flow_run_id(action.flow_run_id, context, action.type)
        run_input = action.run_input
        if run_input is not None:
            run_input = render_value(run_input, self.scope(context))
        try:
            run = resume_flow_run(flow_run_id, run_input, platform=platform)
        except StratoflowError as exc:  # not paused, bad input: the action fails, saying why
            raise ActionError(str(exc)) from None
        return f"flow run {flow_run_id} is {run.state_name}"

    def _change_flow_run_state(
        self, action: ChangeFlowRunState, context: ActionContext, label: str
    ) -> str:
        platform = self._platform(action.type)
        flow_run_id = self._flow_run_id(action.flow_run_id, context, action.type)
        state_type = StateType(action.state)
        state = State(
            type=state_type,
            name=self._text(action.name, context) or state_type.value.title(),
            message=self._text(action.message, context),
        )
        state.details["flow_run_id"] = flow_run_id
        transition = uuid.uuid5(uuid.NAMESPACE_URL, f"{context.fire.id}|{label}")
        result = platform.services.backend.set_flow_run_state(
            flow_run_id, state, force=action.force, transition_id=str(transition)
        )
        return f"flow run {flow_run_id} is {result.state.name}"

    def _pause_deployment(self, action: PauseDeployment, context: ActionContext, label: str) -> str:
        return self._set_deployment(action.deployment, context, action.type, paused=True)

    def _resume_deployment(
        self, action: ResumeDeployment, context: ActionContext, label: str
    ) -> str:
        return self._set_deployment(action.deployment, context, action.type, paused=False)

    def _set_deployment(
        self, given: str | None, context: ActionContext, what: str, *, paused: bool
    ) -> str:
        from stratoflow.deployments.deploy import set_deployment_paused

        platform = self._platform(what)
        name = self._deployment(given, context, what)
        set_deployment_paused(name, paused, platform=platform)
        return f"deployment {name!r} {'paused' if paused else 'resumed'}"

    def _pause_work_queue(self, action: PauseWorkQueue, context: ActionContext, label: str) -> str:
        return self._set_queue(action, context, paused=True)

    def _resume_work_queue(
        self, action: ResumeWorkQueue, context: ActionContext, label: str
    ) -> str:
        return self._set_queue(action, context, paused=False)

    def _set_queue(
        self, action: PauseWorkQueue | ResumeWorkQueue, context: ActionContext, *, paused: bool
    ) -> str:
        platform = self._platform(action.type)
        inferred = triggering_work_queue(context.event)
        pool = action.work_pool or (inferred[0] if inferred else None) or "default"
        queue = action.work_queue or (inferred[1] if inferred else None)
        if queue is None:
            raise ActionError(
                f"{action.type}: the triggering event has no related work queue; set work_queue."
            )
        platform.work_pools.set_queue_paused(pool, queue, paused)
        return f"work queue {pool}/{queue} {'paused' if paused else 'resumed'}"

    def _pause_automation(self, action: PauseAutomation, context: ActionContext, label: str) -> str:
        return self._set_automation(action.automation, context, enabled=False)

    def _resume_automation(
        self, action: ResumeAutomation, context: ActionContext, label: str
    ) -> str:
        return self._set_automation(action.automation, context, enabled=True)

    def _set_automation(self, given: str | None, context: ActionContext, *, enabled: bool) -> str:
        target = given or context.automation.id
        assert target is not None
        record = self.store.set_enabled(target, enabled)
        return f"automation {record.name!r} {'resumed' if enabled else 'paused'}"

    def _send_notification(
        self, action: SendNotification, context: ActionContext, label: str
    ) -> str:
        subject = " ".join((self._text(action.subject, context) or "").split())
        subject = subject.encode("ascii", "replace").decode()[:SUBJECT_LIMIT] or "stratoflow"
        body = self._text(action.body, context) or "(empty)"
        response = self.sns.publish(TopicArn=action.topic_arn, Subject=subject, Message=body)
        message_id = response.get("MessageId") if isinstance(response, Mapping) else None
        return f"published to {action.topic_arn}" + (f" ({message_id})" if message_id else "")

    def _call_webhook(self, action: CallWebhook, context: ActionContext, label: str) -> str:
        secrets = [v for v in (action.url, *action.headers.values()) if isinstance(v, SecretRef)]
        # Read before anything else: an unreadable secret fails this action only.
        known = {ref: self.secrets.value(ref) for ref in secrets}
        url = known[action.url] if isinstance(action.url, SecretRef) else action.url
        shown = _shown_url(url) if isinstance(action.url, SecretRef) else url
        try:
            # Scheme, host and port here; the sender checks the addresses it connects to.
            check_url(url, self.settings.webhook_hosts)
            scope = self.scope(context)
            # A secret is sent as stored, never rendered; other header values are templates.
            headers = {
                k: known[v] if isinstance(v, SecretRef) else render(v, scope)
                for k, v in action.headers.items()
            }
            body = render(action.body, scope) if action.body else ""
            if body and not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = _content_type(body)
            status = self.http(
                WebhookRequest(
                    method=action.method,
                    url=url,
                    headers=headers,
                    body=body.encode() if body else None,
                    timeout=action.timeout,
                )
            )
        except (ActionError, ValueError) as exc:  # ValueError: http.client, a bad header
            # Errors are recorded in the table and logged: never with a secret value.
            message = str(exc).replace(url, shown)
            for value in known.values():
                message = message.replace(value, "***") if value else message
            raise ActionError(message) from None
        return f"{action.method} {shown}: HTTP {status}"

    def _do_nothing(self, action: Action, context: ActionContext, label: str) -> str:
        return "nothing to do"


def _shown_url(url: str) -> str:
    """A URL read from a secret, as messages show it: scheme and host only (a path or
    query may be the credential, as in a Slack incoming-webhook URL)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/<secret>"


def _content_type(body: str) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"
