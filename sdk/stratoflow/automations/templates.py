"""Jinja2 templates of actions, rendered in a sandbox.

In scope: `automation`, `event` (the triggering event, or None), `flow_run` (a dict, when
the triggering resource is a flow run), `firing` (state, window, bucket, fired_at) and
`payload` (all of them as one JSON-ready dict, for webhook bodies).

The sandbox is Jinja's immutable one: a template reads values but cannot change them
(`list.append`, `dict.update`, ... are refused), so one action's template cannot alter
what the next action sees. What a template produces is bounded (MAX_RENDERED_LENGTH):
rendering stops as soon as the output passes it, and `*` / `**` may not build a value
past it, so a template cannot exhaust the function's memory or time.
"""

from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import TemplateError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from stratoflow.events.models import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event

MAX_RENDERED_LENGTH = 100_000
"""Characters one template may render (or, for a whole `{{ expression }}`, its value as
JSON). Longer is an error of the action, not a truncation: a cut JSON body or message
would be sent as if whole. SNS takes 256 KB, a webhook body rarely needs more than a few."""
_POWER_LIMIT = 1 << 64
"""`**` of numbers beyond this (in size of base or exponent) is refused: a big integer
power can take minutes."""

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


class TooLong(TemplateError):
    """A template's output (or an intermediate value) passed MAX_RENDERED_LENGTH."""


class _Environment(ImmutableSandboxedEnvironment):
    """Also bounds `*` and `**`: `{{ 'x' * 10**9 }}` fails before allocating."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_RENDERED_LENGTH
                ):
                    raise TooLong(
                        f"a repetition of {len(sequence) * times} items is longer than "
                        f"the {MAX_RENDERED_LENGTH} a template may produce"
                    )
            return operator.mul(left, right)
        if (
            isinstance(left, int | float)
            and isinstance(right, int | float)
            and (abs(left) > _POWER_LIMIT or abs(right) > 64)
        ):
            raise TooLong(f"{left!r} ** {right!r} is too large for a template")
        return super().call_binop(context, operator_name, left, right)


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    return _Environment(autoescape=False, undefined=Undefined, keep_trailing_newline=True)


def _problem(source: str, exc: TemplateError) -> TemplateProblem:
    if isinstance(exc, SecurityError):
        return TemplateProblem(
            f"template {source!r} was refused by the sandbox: {str(exc).rstrip('.')}. "
            "Templates may read "
            "values but not change a list or dict (append, update, pop...), nor reach "
            "private attributes; build a new value instead, e.g. `items + [x]`."
        )
    if isinstance(exc, TooLong):
        return TemplateProblem(
            f"template {source[:200]!r} failed: {exc}; render less (e.g. a `truncate` or "
            "slice filter, fewer fields of `payload`)."
        )
    return TemplateProblem(f"template {source!r} failed: {exc}")


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
        # Chunk by chunk: a loop that would render gigabytes stops at the limit.
        chunks: list[str] = []
        length = 0
        for chunk in environment().from_string(text).generate(context):
            length += len(chunk)
            if length > MAX_RENDERED_LENGTH:
                raise TooLong(
                    f"its output is longer than MAX_RENDERED_LENGTH ({MAX_RENDERED_LENGTH} "
                    "characters)"
                )
            chunks.append(chunk)
    except TemplateError as exc:
        raise _problem(text, exc) from None
    return "".join(chunks)


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
            _check_size(evaluated)
        except TemplateError as exc:
            raise _problem(value, exc) from None
        return evaluated
    if isinstance(value, Mapping):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(item, context) for item in value]
    return value


def _check_size(value: Any) -> None:
    """A whole expression's value (e.g. a parameter of run-deployment), measured as the
    JSON it will be stored as."""
    size = len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
    if size > MAX_RENDERED_LENGTH:
        raise TooLong(
            f"its value is longer than MAX_RENDERED_LENGTH ({MAX_RENDERED_LENGTH} "
            "characters, as JSON)"
        )
