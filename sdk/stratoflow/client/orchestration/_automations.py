"""The client's automation methods: `stratoflow.automations.api` (automations need
the AWS backend, or the local emulator). An automation is found by its id or its name.

`stratoflow.automations.api` is imported by each method, on first use: it brings the
automation models, their templates (jinja2) and stores, a fifth of a second that a
script reading runs should not pay when it imports the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from stratoflow.exceptions import ObjectNotFound

if TYPE_CHECKING:
    from stratoflow.automations.models import Automation


class AutomationMethods:
    def create_automation(self, automation: Automation | Mapping[str, Any]) -> Automation:
        """Returns the automation as stored, with its id (Prefect returns the id)."""
        from stratoflow.automations import api

        return api.create_automation(automation)

    def read_automations(self) -> list[Automation]:
        from stratoflow.automations import api

        return api.list_automations()

    def read_automation(self, automation_id: UUID | str) -> Automation | None:
        from stratoflow.automations import api

        try:
            return api.read_automation(str(automation_id))
        except ObjectNotFound:
            return None  # as Prefect's client, for a missing automation

    def read_automations_by_name(self, name: str) -> list[Automation]:
        from stratoflow.automations import api

        return [found for found in api.list_automations() if found.name == name]

    def pause_automation(self, automation_id: UUID | str) -> None:
        from stratoflow.automations import api

        api.pause_automation(str(automation_id))

    def resume_automation(self, automation_id: UUID | str) -> None:
        from stratoflow.automations import api

        api.resume_automation(str(automation_id))

    def delete_automation(self, automation_id: UUID | str) -> None:
        from stratoflow.automations import api

        api.delete_automation(str(automation_id))
