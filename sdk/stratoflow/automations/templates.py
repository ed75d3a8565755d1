"""Jinja2 templates of actions, rendered in a sandbox.

In scope: `automation`, `event` (the triggering event, or None), `flow_run` (a dict, when
the triggering resource is a flow run), `firing` (state, window, bucket, fired_at) and
`payload` (all of them as one JSON-ready dict, for webhook bodies).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import TemplateError, Undefined
from jinja2.sandbox import SandboxedEnvironment

from stratoflow.events.models import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event

_WHOLE_EXPRESSION = re.compile(r"^\{\{(?P<expression>(?:(?!\}\}|\{\{).)*)\}\}$", re.DOTALL)


class ResourceView(dict[str, str]):
    """A resource's labels for templates: `resource.id`, `resource.name`, `resource.role`,
    or any label with `resource['stratoflow.resource.id']`."""

    @property
    def id(self) -> str | None:
        return self.get(RESOURCE_ID)

    @property
    def name(self) -> str | None:
        return self.get(RESOURCE_NAME)

    @property
    def role(self) -> str | None:
        return self.get(RESOURCE_ROLE)


@dataclass(frozen=True)
class EventView:
    """An event for templates: `event.event`, `event.resource.name`, `event.payload`..."""

    id: str
    event: str
    occurred: datetime
    resource: ResourceView
    related: list[ResourceView]
    payload: dict[str, Any]
    follows: str | None

    def related_by_role(self, role: str) -> list[ResourceView]:
        return [r for r in self.related if r.role == role]

    def __str__(self) -> str:
        return f"{self.event} on {self.resource.id}"


def event_view(event: Event) -> EventView:
    return EventView(
        id=event.id,
        event=event.event,
        occurred=event.occurred,
        resource=ResourceView(event.resource.labels),
        related=[ResourceView(r.labels) for r in event.related],
        payload=event.payload,
        follows=event.follows,
    )


class TemplateProblem(ValueError):
    """A template does not parse or does not render."""


@functools.cache
def environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=False, undefined=Undefined, keep_trailing_newline=True)


def check_template(text: str, where: str) -> None:
    """Raise a ValueError naming `where` when `text` is not a valid template."""
    try:
        environment().parse(text)
    except TemplateError as exc:
        raise ValueError(f"{where} is not a valid template: {exc}") from None


def render(text: str, context: Mapping[str, Any]) -> str:
    if "{" not in text:
        return text
    try:
        return environment().from_string(text).render(context)
    except TemplateError as exc:
        raise TemplateProblem(f"template {text!r} failed: {exc}") from None


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render the strings in a JSON-like value. A string that is exactly one
    `{{ expression }}` gives the expression's value with its type (an int stays an int)."""
    if isinstance(value, str):
        whole = _WHOLE_EXPRESSION.match(value.strip())
        if whole is None:
            return render(value, context)
        try:
            evaluated = environment().compile_expression(
                whole["expression"], undefined_to_none=True
            )(**context)
        except TemplateError as exc:
            raise TemplateProblem(f"template {value!r} failed: {exc}") from None
        return evaluated
    if isinstance(value, Mapping):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(item, context) for item in value]
    return value
