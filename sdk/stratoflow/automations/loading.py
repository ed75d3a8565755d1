"""Automation definitions from YAML or JSON, with errors that name the offending field.

A file holds one automation (a mapping), a list of them, or a mapping with an
`automations:` list. Errors read `automations[0].trigger.threshold: Input should be
greater than or equal to 1`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from stratoflow.automations.models import ACTION_TYPES, TRIGGER_TYPES, Automation
from stratoflow.exceptions import StratoflowError

_TAGS = frozenset(TRIGGER_TYPES + ACTION_TYPES)
_ADAPTER: TypeAdapter[list[Automation]] = TypeAdapter(list[Automation])


class AutomationDefinitionError(StratoflowError, ValueError):
    """An automation definition (file, mapping or list) is invalid."""


def load_automations(path: str | Path) -> list[Automation]:
    """The automations of a `.yaml`/`.yml` or `.json` file."""
    file = Path(path)
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise AutomationDefinitionError(f"{file}: no such file") from None
    except OSError as exc:
        raise AutomationDefinitionError(f"{file}: cannot be read: {exc.strerror}") from None
    try:
        raw = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise AutomationDefinitionError(f"{file}: not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise AutomationDefinitionError(f"{file}: not valid YAML: {detail}") from None
    return parse_automations(raw, source=str(file))


def parse_automations(raw: Any, *, source: str = "definition") -> list[Automation]:
    """Automations from parsed YAML/JSON: a mapping, a list, or `{automations: [...]}`."""
    if isinstance(raw, dict) and set(raw) == {"automations"}:
        raw = raw["automations"]
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise AutomationDefinitionError(
            f"{source}: expected an automation (a mapping with name, trigger and actions), "
            "a list of them, or `automations:` with a list"
        )
    try:
        automations = _ADAPTER.validate_python(items)
    except ValidationError as exc:
        problems = "; ".join(
            f"{field_path(error['loc'], items)}: {_message(error['msg'])}" for error in exc.errors()
        )
        raise AutomationDefinitionError(f"{source}: {problems}") from None
    seen: dict[str, int] = {}
    for index, automation in enumerate(automations):
        if automation.name in seen:
            raise AutomationDefinitionError(
                f"{source}: automations[{index}].name: {automation.name!r} is also the name "
                f"of automations[{seen[automation.name]}]; names are unique"
            )
        seen[automation.name] = index
    return automations


def _message(text: str) -> str:
    return text.removeprefix("Value error, ")


def field_path(location: tuple[int | str, ...], raw: Any, root: str = "automations") -> str:
    """`automations[0].trigger.threshold` from pydantic's location, leaving out the parts
    that are not in the document: the `type` tag of a trigger or action, and the member
    names of a union (`int`, `literal['any','all']`)."""
    path = root
    node: Any = raw
    missing = False
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if isinstance(node, dict):
            if part in node:
                node = node[part]
            elif part in _TAGS:
                continue  # the tag of a trigger or action
            else:
                node, missing = None, True
            path += f".{part}"
        elif node is None and missing:
            path += f".{part}"
        # else: a union member's name under a scalar value
    return path
