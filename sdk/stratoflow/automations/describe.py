"""Automations described for people: a trigger in one line, the actions' types, and the
document `strato automation inspect` prints and the UI's automation page shows (the
definition with inline secret values redacted, when it last fired, its last error)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stratoflow.automations.base import AutomationRecord, FiringRecord
from stratoflow.automations.models import Automation, CompoundTrigger, EventTrigger, Trigger
from stratoflow.automations.secrets import has_inline_secrets, redacted


def describe_trigger(trigger: Trigger) -> str:
    """One line, e.g. `Reactive 3 x stratoflow.flow-run.Failed within 600s per <label>`."""
    if isinstance(trigger, EventTrigger):
        text = f"{trigger.posture} {trigger.threshold} x {', '.join(trigger.expect) or 'any event'}"
        if trigger.after:
            text += f" after {', '.join(trigger.after)}"
        if trigger.within:
            text += f" within {trigger.within:g}s"
        if trigger.for_each:
            text += f" per {', '.join(trigger.for_each)}"
        return text
    children = "; ".join(describe_trigger(t) for t in trigger.triggers)
    window = f" within {trigger.within:g}s" if trigger.within else ""
    if isinstance(trigger, CompoundTrigger):
        return f"{trigger.require} of ({children}){window}"
    return f"in order ({children}){window}"


def action_types(automation: Automation) -> list[str]:
    """The types of every action, in the order of `actions`, `actions_on_trigger`,
    `actions_on_resolve`."""
    return [
        action.type
        for action in (
            *automation.actions,
            *automation.actions_on_trigger,
            *automation.actions_on_resolve,
        )
    ]


def definition_of(record: AutomationRecord) -> dict[str, Any]:
    """The automation as written (JSON mode), without its id and status. References to
    secrets are shown as they are; a value still inline (earlier versions) is not."""
    return redacted(record.automation.model_dump(mode="json", exclude={"id", "enabled"}))


def automation_document(record: AutomationRecord) -> dict[str, Any]:
    """What `strato automation inspect --json` prints."""

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": record.id,
        "name": record.name,
        "enabled": record.enabled,
        "created": when(record.created),
        "updated": when(record.updated),
        "last_fired": when(record.last_fired),
        "last_error": record.last_error,
        "last_error_at": when(record.last_error_at),
        "inline_secrets": has_inline_secrets(record.automation),
        "definition": definition_of(record),
    }


def firing_document(firing: FiringRecord) -> dict[str, Any]:
    """A firing as `strato automation inspect` prints it (`recent_firings`)."""
    return {
        "fired_at": firing.fired_at.isoformat(),
        "state": firing.state,
        "trigger": firing.trigger,
        "bucket": firing.bucket,
        "window": firing.window,
        "event_id": firing.event_id,
        # A flow-run or task-run event is found with `strato events ls --flow-run` (not
        # stored by default: derived from its run).
        "event_flow_run_id": firing.event_flow_run_id,
    }
