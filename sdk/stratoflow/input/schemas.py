"""The JSON schema a paused run stores for its input, made safe to check input with.

The schema is written by the run's worker, so to whoever resumes the run (an operator's
CLI, the automations function) it is untrusted: a `pattern` could be a regular expression
that takes forever, a `$ref` could point elsewhere. Before it is used, only the keywords
that describe JSON structure and plain bounds are kept (`SAFE_KEYWORDS`), `$ref`s only
when they point inside the schema, and the whole is bounded in size and depth. The run
checks its input once more, with its own pydantic model, when it reads it: a constraint
dropped here (a pattern, a custom validator) is enforced there.
"""

from __future__ import annotations

from typing import Any

SAFE_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "items",
        "prefixItems",
        "additionalProperties",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "allOf",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "title",
        "description",
        "default",
        "$defs",
        "$ref",
    }
)
MAX_DEPTH = 32
MAX_NODES = 5000


class UnsafeSchema(ValueError):
    """A stored input schema too large or deep to use."""


def safe_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with only SAFE_KEYWORDS (local `$ref`s), or UnsafeSchema."""
    cleaned = _clean(schema, 0, [MAX_NODES])
    assert isinstance(cleaned, dict)
    return cleaned


def _clean(node: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise UnsafeSchema("the input schema is too large or too deep to check input with")
    if isinstance(node, list):
        return [_clean(item, depth + 1, budget) for item in node]
    if not isinstance(node, dict):
        return node
    cleaned: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            cleaned[key] = {
                str(name): _clean(sub, depth + 1, budget) for name, sub in value.items()
            }
        elif key == "$ref":
            if isinstance(value, str) and value.startswith("#/"):
                cleaned[key] = value
        elif key in ("enum", "const", "default", "required", "title", "description"):
            cleaned[key] = value
        elif key in SAFE_KEYWORDS:
            cleaned[key] = _clean(value, depth + 1, budget)
    return cleaned
