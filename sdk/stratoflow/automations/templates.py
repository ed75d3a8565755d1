"""Jinja2 templates of actions: what is in their scope, and checking and rendering them.

In scope: `automation`, `event` (the triggering event, or None), `flow_run` (a dict, when
the triggering resource is a flow run), `firing` (state, window, bucket, fired_at) and
`payload` (all of them as one JSON-ready dict, for webhook bodies).

They render in Jinja's immutable sandbox, with bounded output (`sandbox.py`). That module,
and jinja2 with it (~15 ms of a cold start), is loaded when the first template is checked
or rendered, not with the automation models: a text without `{` is no template (Jinja
has nothing to parse in it), and most automations never render one, so the automations
Lambda does not pay for Jinja at its start (bench/cold_start.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stratoflow.events.label_names import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from stratoflow.events.models import Event


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


def check_template(text: str, where: str) -> None:
    """Raise a ValueError naming `where` when `text` is not a valid template."""
    if "{" not in text:
        return
    from stratoflow.automations import sandbox  # jinja2 on first use: see the docstring

    sandbox.check(text, where)


def render(text: str, context: Mapping[str, Any]) -> str:
    """`text` rendered; a TemplateProblem (sandbox.py) when it fails or is too long."""
    if "{" not in text:
        return text
    from stratoflow.automations import sandbox  # jinja2 on first use: see the docstring

    return sandbox.render(text, context)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render the strings in a JSON-like value. A string that is exactly one
    `{{ expression }}` gives the expression's value with its type (an int stays an int)."""
    if isinstance(value, str):
        if "{" not in value:
            return value
        from stratoflow.automations import sandbox  # jinja2 on first use: see the docstring

        return sandbox.evaluate(value, context)
    if isinstance(value, Mapping):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(item, context) for item in value]
    return value
