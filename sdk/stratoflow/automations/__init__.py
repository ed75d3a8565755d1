"""Automations: when events match a trigger, run actions (as Prefect 3's).

    from stratoflow.automations import Automation, EventTrigger, CancelFlowRun, create_automation

    create_automation(
        Automation(
            name="cancel-stuck-runs",
            trigger=EventTrigger(
                after=["stratoflow.flow-run.Running"],
                expect=["stratoflow.flow-run.Completed", "stratoflow.flow-run.Failed"],
                for_each=["stratoflow.resource.id"],
                posture="Proactive",
                within=3600,
            ),
            actions=[CancelFlowRun()],
        )
    )

See docs/automations.md.

The names here are loaded on first use (PEP 562), as `stratoflow`'s are: the automations
Lambda imports the engine, not the YAML loading, the in-memory store or the API of the
CLI (bench/cold_start.py).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratoflow.automations.actions import (
        ActionContext,
        ActionExecutor,
        ActionRunner,
    )
    from stratoflow.automations.api import (
        automation_store,
        create_automation,
        delete_automation,
        list_automations,
        pause_automation,
        read_automation,
        read_automation_record,
        resume_automation,
    )
    from stratoflow.automations.engine import ActionResult, AutomationEngine, Firing
    from stratoflow.automations.loading import (
        AutomationDefinitionError,
        load_automations,
        parse_automations,
    )
    from stratoflow.automations.memory import MemoryAutomationStore
    from stratoflow.automations.models import (
        Action,
        Automation,
        CallWebhook,
        CancelFlowRun,
        ChangeFlowRunState,
        CompoundTrigger,
        DoNothing,
        EventTrigger,
        PauseAutomation,
        PauseDeployment,
        PauseWorkQueue,
        ResumeAutomation,
        ResumeDeployment,
        ResumeFlowRun,
        ResumeWorkQueue,
        RunDeployment,
        SendNotification,
        SequenceTrigger,
        Trigger,
    )
    from stratoflow.automations.secrets import SecretError, SecretRef
    from stratoflow.automations.store import (
        AutomationRecord,
        AutomationStore,
        DuplicateAutomationName,
        UnknownAutomation,
    )
    from stratoflow.automations.webhooks import ActionError, WebhookNotAllowed, WebhookRequest

_MODULE_OF = {
    "ActionContext": "stratoflow.automations.actions",
    "ActionExecutor": "stratoflow.automations.actions",
    "ActionRunner": "stratoflow.automations.actions",
    "automation_store": "stratoflow.automations.api",
    "create_automation": "stratoflow.automations.api",
    "delete_automation": "stratoflow.automations.api",
    "list_automations": "stratoflow.automations.api",
    "pause_automation": "stratoflow.automations.api",
    "read_automation": "stratoflow.automations.api",
    "read_automation_record": "stratoflow.automations.api",
    "resume_automation": "stratoflow.automations.api",
    "ActionResult": "stratoflow.automations.engine",
    "AutomationEngine": "stratoflow.automations.engine",
    "Firing": "stratoflow.automations.engine",
    "AutomationDefinitionError": "stratoflow.automations.loading",
    "load_automations": "stratoflow.automations.loading",
    "parse_automations": "stratoflow.automations.loading",
    "MemoryAutomationStore": "stratoflow.automations.memory",
    "Action": "stratoflow.automations.models",
    "Automation": "stratoflow.automations.models",
    "CallWebhook": "stratoflow.automations.models",
    "CancelFlowRun": "stratoflow.automations.models",
    "ChangeFlowRunState": "stratoflow.automations.models",
    "CompoundTrigger": "stratoflow.automations.models",
    "DoNothing": "stratoflow.automations.models",
    "EventTrigger": "stratoflow.automations.models",
    "PauseAutomation": "stratoflow.automations.models",
    "PauseDeployment": "stratoflow.automations.models",
    "PauseWorkQueue": "stratoflow.automations.models",
    "ResumeAutomation": "stratoflow.automations.models",
    "ResumeDeployment": "stratoflow.automations.models",
    "ResumeFlowRun": "stratoflow.automations.models",
    "ResumeWorkQueue": "stratoflow.automations.models",
    "RunDeployment": "stratoflow.automations.models",
    "SendNotification": "stratoflow.automations.models",
    "SequenceTrigger": "stratoflow.automations.models",
    "Trigger": "stratoflow.automations.models",
    "SecretError": "stratoflow.automations.secrets",
    "SecretRef": "stratoflow.automations.secrets",
    "AutomationRecord": "stratoflow.automations.store",
    "AutomationStore": "stratoflow.automations.store",
    "DuplicateAutomationName": "stratoflow.automations.store",
    "UnknownAutomation": "stratoflow.automations.store",
    "ActionError": "stratoflow.automations.webhooks",
    "WebhookNotAllowed": "stratoflow.automations.webhooks",
    "WebhookRequest": "stratoflow.automations.webhooks",
}

__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "ActionExecutor",
    "ActionResult",
    "ActionRunner",
    "Automation",
    "AutomationDefinitionError",
    "AutomationEngine",
    "AutomationRecord",
    "AutomationStore",
    "CallWebhook",
    "CancelFlowRun",
    "ChangeFlowRunState",
    "CompoundTrigger",
    "DoNothing",
    "DuplicateAutomationName",
    "EventTrigger",
    "Firing",
    "MemoryAutomationStore",
    "PauseAutomation",
    "PauseDeployment",
    "PauseWorkQueue",
    "ResumeAutomation",
    "ResumeDeployment",
    "ResumeFlowRun",
    "ResumeWorkQueue",
    "RunDeployment",
    "SecretError",
    "SecretRef",
    "SendNotification",
    "SequenceTrigger",
    "Trigger",
    "UnknownAutomation",
    "WebhookNotAllowed",
    "WebhookRequest",
    "automation_store",
    "create_automation",
    "delete_automation",
    "list_automations",
    "load_automations",
    "parse_automations",
    "pause_automation",
    "read_automation",
    "read_automation_record",
    "resume_automation",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        # A submodule (`stratoflow.automations.models`) was there once the package was
        # imported, when it imported them all: keep that working.
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module 'stratoflow.automations' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
