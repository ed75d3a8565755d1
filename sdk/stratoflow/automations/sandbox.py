"""The Jinja side of action templates: the sandbox they render in, and its bounds.

The sandbox is Jinja's immutable one: a template reads values but cannot change them
(`list.append`, `dict.update`, ... are refused), so one action's template cannot alter
what the next action sees. What a template produces is bounded (MAX_RENDERED_LENGTH):
rendering stops as soon as the output passes it, and `*` / `**` may not build a value
past it, so a template cannot exhaust the function's memory or time.

Actions and models go through `templates.py`, which loads this module (and jinja2) when
the first template is checked or rendered.
"""

from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RENDERED_LENGTH = 100_000
"""Characters one template may render (or, for a whole `{{ expression }}`, its value as
JSON). Longer is an error of the action, not a truncation: a cut JSON body or message
would be sent as if whole. SNS takes 256 KB, a webhook body rarely needs more than a few."""
_POWER_LIMIT = 1 << 64
"""`**` of numbers beyond this (in size of base or exponent) is refused: a big integer
power can take minutes."""

_WHOLE_EXPRESSION = re.compile(r"^\{\{(?P<expression>(?:(?!\}\}|\{\{).)*)\}\}$", re.DOTALL)


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


def check(text: str, where: str) -> None:
    """Raise a ValueError naming `where` when `text` is not a valid template."""
    try:
        environment().parse(text)
    except TemplateError as exc:
        raise ValueError(f"{where} is not a valid template: {exc}") from None


def render(text: str, context: Mapping[str, Any]) -> str:
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


def evaluate(text: str, context: Mapping[str, Any]) -> Any:
    """A string that is exactly one `{{ expression }}` gives the expression's value with
    its type (an int stays an int); any other string is rendered."""
    whole = _WHOLE_EXPRESSION.match(text.strip())
    if whole is None:
        return render(text, context)
    try:
        evaluated = environment().compile_expression(whole["expression"], undefined_to_none=True)(
            **context
        )
        _check_size(evaluated)
    except TemplateError as exc:
        raise _problem(text, exc) from None
    return evaluated


def _check_size(value: Any) -> None:
    """A whole expression's value (e.g. a parameter of run-deployment), measured as the
    JSON it will be stored as."""
    size = len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
    if size > MAX_RENDERED_LENGTH:
        raise TooLong(
            f"its value is longer than MAX_RENDERED_LENGTH ({MAX_RENDERED_LENGTH} "
            "characters, as JSON)"
        )
