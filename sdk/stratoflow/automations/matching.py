"""Which events a trigger sees, and which bucket they count in (pure functions).

Patterns (`stratoflow.events.patterns`, re-exported here) match a whole value; `*` stands
for any run of characters (possibly none) and every other character is literal:
`stratoflow.flow-run.*` matches every flow run id. A label missing from a resource only
matches the pattern `*`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from stratoflow.automations.models import EventTrigger
from stratoflow.events.models import Event, Resource
from stratoflow.events.patterns import Patterns, labels_match, matches, matches_any

__all__ = [
    "Patterns",
    "bucket_key",
    "bucket_values",
    "composite_key",
    "covers",
    "find_label",
    "is_after",
    "is_expected",
    "labels_match",
    "matches",
    "matches_any",
    "related_match",
]

RELATED_PREFIX = "related:"
MAX_BUCKET_KEY = 400
"""Longer bucket keys are shortened with a hash (a DynamoDB sort key holds 1 KB)."""


def related_match(
    spec: Mapping[str, Patterns] | Sequence[Mapping[str, Patterns]], related: Sequence[Resource]
) -> bool:
    """Each spec (one mapping, or each of a list) is met by at least one related resource."""
    specs = [spec] if isinstance(spec, Mapping) else list(spec)
    return all(
        not one or any(labels_match(one, resource.labels) for resource in related) for one in specs
    )


def is_after(trigger: EventTrigger, event: Event) -> bool:
    return bool(trigger.after) and matches_any(trigger.after, event.event)


def is_expected(trigger: EventTrigger, event: Event) -> bool:
    """An `expect` event (any event when `expect` is empty); an `after` event is not."""
    if is_after(trigger, event):
        return False
    return not trigger.expect or matches_any(trigger.expect, event.event)


def covers(trigger: EventTrigger, event: Event) -> bool:
    """The trigger sees the event: its resource and related resources match, and it is an
    `after` or an `expect` event."""
    if not labels_match(trigger.match, event.resource.labels):
        return False
    if not related_match(trigger.match_related, event.related):
        return False
    return is_after(trigger, event) or is_expected(trigger, event)


def find_label(event: Event, label: str) -> str | None:
    """A label of the event's resource, or `related:<role>:<label>` of its first related
    resource with that role."""
    if label.startswith(RELATED_PREFIX):
        role, _, name = label.removeprefix(RELATED_PREFIX).partition(":")
        for resource in event.related:
            if resource.role == role and name in resource.labels:
                return resource.labels[name]
        return None
    return event.resource.labels.get(label)


def bucket_values(for_each: Sequence[str], event: Event) -> str:
    """The `for_each` values of the event, joined (a missing label counts as empty)."""
    return "|".join(find_label(event, label) or "" for label in for_each)


def bucket_key(trigger_path: str, values: str) -> str:
    """The key of a bucket: its values for the root trigger, prefixed with the trigger's
    path for a trigger inside a compound or sequence trigger."""
    key = values if trigger_path == "trigger" else f"{trigger_path}:{values}"
    if len(key) > MAX_BUCKET_KEY:
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        key = f"{key[: MAX_BUCKET_KEY - 30]}~{digest}"
    return key


def composite_key(trigger_path: str) -> str:
    """The one bucket of a compound or sequence trigger."""
    return f"{trigger_path}:*"
