"""Managing automations from Python (the CLI calls these too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stratoflow.automations.loading import parse_automations
from stratoflow.automations.models import Automation
from stratoflow.automations.secrets import AutomationSecrets
from stratoflow.automations.store import AutomationRecord, AutomationStore, BaseAutomationStore
from stratoflow.platform import Platform, get_platform


def automation_store(platform: Platform | None = None) -> BaseAutomationStore:
    """The automations of the platform's state table; webhook secrets of new automations
    go to Secrets Manager (secrets.py)."""
    platform = platform or get_platform()
    backend = platform.backend
    secrets = AutomationSecrets(backend.clients.secretsmanager, platform.settings.queue_prefix)
    return AutomationStore(
        backend.clients.dynamodb, backend.table, clock=platform.services.clock, secrets=secrets
    )


def create_automation(
    automation: Automation | Mapping[str, Any], *, store: BaseAutomationStore | None = None
) -> Automation:
    """Store a new automation (a model, or a mapping as in a YAML file); returns it with
    its id. A name already in use is an error naming it."""
    if not isinstance(automation, Automation):
        automation = parse_automations(dict(automation))[0]
    return (store or automation_store()).create(automation).automation


def read_automation(name_or_id: str, *, store: BaseAutomationStore | None = None) -> Automation:
    return (store or automation_store()).find(name_or_id).automation


def read_automation_record(
    name_or_id: str, *, store: BaseAutomationStore | None = None
) -> AutomationRecord:
    """The automation with when it last fired and its last action error."""
    return (store or automation_store()).find(name_or_id)


def list_automations(*, store: BaseAutomationStore | None = None) -> list[Automation]:
    return [r.automation for r in (store or automation_store()).list()]


def pause_automation(name_or_id: str, *, store: BaseAutomationStore | None = None) -> Automation:
    """Stop an automation from counting events and firing (its buckets are kept)."""
    return (store or automation_store()).set_enabled(name_or_id, False).automation


def resume_automation(name_or_id: str, *, store: BaseAutomationStore | None = None) -> Automation:
    return (store or automation_store()).set_enabled(name_or_id, True).automation


def delete_automation(name_or_id: str, *, store: BaseAutomationStore | None = None) -> Automation:
    """Delete an automation with its buckets and firings."""
    return (store or automation_store()).delete(name_or_id).automation
