"""Automations: the list (enabled, the trigger in one line, the actions, when it last
fired), an automation's page (its definition as YAML and as JSON, redacted as `strato
automation inspect` shows it, and its firings of the last 7 days), and enabling or
disabling one (`strato automation resume|pause`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler import Response

from stratoflow.platform import get_platform
from stratoflow.ui.http import automation_url, new_router, path_value, redirect
from stratoflow.ui.rendering import pretty_json, render

if TYPE_CHECKING:
    from stratoflow.automations.base import AutomationRecord, BaseAutomationStore

router = new_router()

FIRINGS_SHOWN = 50


@dataclass(frozen=True)
class AutomationRow:
    record: AutomationRecord
    trigger: str
    """The trigger in one line (as `strato automation ls`)."""
    actions: list[str]
    inline_secrets: bool
    """Stored by an earlier version with webhook secrets in the table (docs/automations.md)."""


def _store() -> BaseAutomationStore:
    # On use: the automations' models and loaders cost ~50 ms of the Lambda's cold start.
    from stratoflow.automations.api import automation_store

    return automation_store(get_platform())


def automation_row(record: AutomationRecord) -> AutomationRow:
    from stratoflow.automations.describe import action_types, describe_trigger  # see _store
    from stratoflow.automations.secrets import has_inline_secrets

    automation = record.automation
    return AutomationRow(
        record=record,
        trigger=describe_trigger(automation.trigger),
        actions=action_types(automation),
        inline_secrets=has_inline_secrets(automation),
    )


@router.get("/automations")
def list_automations() -> Response[str]:
    rows = [automation_row(record) for record in _store().list()]
    return render("automations/list.html", active="automations", rows=rows)


@router.get("/automations/<automation_id>")
def automation_page(automation_id: str) -> Response[str]:
    import yaml  # on use: ~15 ms of the Lambda's start, for this page only

    from stratoflow.automations.describe import definition_of  # see _store

    store = _store()
    record = store.find(path_value(automation_id))
    definition = definition_of(record)
    return render(
        "automations/page.html",
        active="automations",
        row=automation_row(record),
        definition_yaml=yaml.safe_dump(definition, sort_keys=False, allow_unicode=True),
        definition_json=pretty_json(definition),
        firings=store.list_firings(record.id, limit=FIRINGS_SHOWN),
    )


@router.post("/automations/<automation_id>/enable")
def enable_automation(automation_id: str) -> Response[str]:
    """`strato automation resume`: it counts events and fires again."""
    automation_id = path_value(automation_id)
    record = _store().set_enabled(automation_id, True)
    return redirect(automation_url(record.id))


@router.post("/automations/<automation_id>/disable")
def disable_automation(automation_id: str) -> Response[str]:
    """`strato automation pause`: it stops counting events and firing."""
    automation_id = path_value(automation_id)
    record = _store().set_enabled(automation_id, False)
    return redirect(automation_url(record.id))
