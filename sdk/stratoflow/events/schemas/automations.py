"""`prefect.events.schemas.automations` under its Prefect path.

The triggers are stratoflow's own (stratoflow.automations.models), taking what Prefect's
take as well:

- `within` as a `timedelta` (stratoflow's is seconds), `posture` as a `Posture`;
- `after`, `expect` and `for_each` as sets;
- `match` and `match_related` as a `ResourceSpecification` or a dict;
- Prefect's names: `prefect.resource.id` is `stratoflow.resource.id`, and an event name
  or a pattern `prefect.flow-run.*` is `stratoflow.flow-run.*` (the events stratoflow
  emits for its runs carry its own prefix).

Prefect's metric triggers (`MetricTrigger`) have no counterpart: the automations engine
counts events, it does not query metrics.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import model_validator

from stratoflow.automations import models
from stratoflow.events.models import label_name

__all__ = [
    "Automation",
    "AutomationCore",
    "CompositeTrigger",
    "CompoundTrigger",
    "EventTrigger",
    "Posture",
    "SequenceTrigger",
    "Trigger",
    "TriggerTypes",
]

_PREFECT_NAME = re.compile(r"(^|:)prefect\.")


class Posture(enum.StrEnum):
    Reactive = "Reactive"
    Proactive = "Proactive"
    Metric = "Metric"


def _own_name(value: Any) -> Any:
    """An event name, label or pattern with Prefect's prefix as stratoflow's
    (`related:flow:prefect.resource.name` too)."""
    if isinstance(value, str):
        return _PREFECT_NAME.sub(r"\1stratoflow.", value)
    if isinstance(value, list | tuple | set | frozenset):
        return [
            _own_name(item)
            for item in (sorted(value) if isinstance(value, set | frozenset) else value)
        ]
    return value


def _own_patterns(value: Any) -> Any:
    value = getattr(value, "root", value)  # a ResourceSpecification
    if isinstance(value, Mapping):
        return {label_name(k): _own_name(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_own_patterns(item) for item in value]
    return value


def _seconds(value: Any) -> Any:
    if value is None:
        return 0
    return value.total_seconds() if isinstance(value, timedelta) else value


def from_prefect(data: Any) -> Any:
    """A trigger's fields, as Prefect spells them, in stratoflow's form."""
    if not isinstance(data, Mapping):
        return data
    converted = dict(data)
    if "within" in converted:
        converted["within"] = _seconds(converted["within"])
    if isinstance(converted.get("posture"), enum.Enum):
        converted["posture"] = converted["posture"].value
    for name in ("after", "expect", "for_each"):
        if name in converted:
            converted[name] = _own_name(converted[name])
    for name in ("match", "match_related"):
        if name in converted:
            converted[name] = _own_patterns(converted[name])
    if "triggers" in converted:
        converted["triggers"] = [from_prefect(child) for child in converted["triggers"]]
    return converted


class EventTrigger(models.EventTrigger):
    __doc__ = models.EventTrigger.__doc__

    @model_validator(mode="before")
    @classmethod
    def _from_prefect(cls, data: Any) -> Any:
        return from_prefect(data)


class CompoundTrigger(models.CompoundTrigger):
    __doc__ = models.CompoundTrigger.__doc__

    @model_validator(mode="before")
    @classmethod
    def _from_prefect(cls, data: Any) -> Any:
        return from_prefect(data)


class SequenceTrigger(models.SequenceTrigger):
    __doc__ = models.SequenceTrigger.__doc__

    @model_validator(mode="before")
    @classmethod
    def _from_prefect(cls, data: Any) -> Any:
        return from_prefect(data)


class Automation(models.Automation):
    """stratoflow's Automation, whose trigger may be written as Prefect's."""

    @model_validator(mode="before")
    @classmethod
    def _trigger_from_prefect(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("trigger"), Mapping):
            return {**data, "trigger": from_prefect(data["trigger"])}
        return data


AutomationCore = Automation
"""Prefect's Automation without an id; stratoflow's id is optional already."""
Trigger = models.Trigger
TriggerTypes = models.Trigger
CompositeTrigger = models.CompositeTrigger
ResourceTrigger = models.EventTrigger
